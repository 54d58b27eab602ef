"""Configuration: defaults need no file; bad files stop with one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pillarbox.config import Config, ConfigError, check_data_dir, load, parse_address


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pillarbox.toml"
    path.write_text(text)
    return path


def test_defaults_without_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """No file and no PILLARBOX_CONFIG gives the documented defaults."""
    monkeypatch.delenv("PILLARBOX_CONFIG", raising=False)
    config = load(None)
    assert config == Config()
    assert config.listen.smtp == "127.0.0.1:2525"
    assert config.listen.http == "127.0.0.1:8080"


def test_contract_keys_load(tmp_path: Path) -> None:
    """The [server]/[listen] keys outside harnesses use are accepted as written."""
    path = write(
        tmp_path,
        """
[server]
hostname = "mail.example.test"
data_dir = "./var"
[listen]
smtp = "127.0.0.1:2525"
submission = "127.0.0.1:2587"
submissions = "127.0.0.1:2465"
imap = "127.0.0.1:2143"
imaps = "127.0.0.1:2993"
pop3 = "127.0.0.1:2110"
pop3s = ""
http = "127.0.0.1:8080"
""",
    )
    config = load(path)
    assert config.listen.pop3s == ""
    assert config.server.data_dir == str(tmp_path / "var")


def test_env_variable_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[server]\nhostname = "mx.example.org"\n')
    monkeypatch.setenv("PILLARBOX_CONFIG", str(path))
    assert load(None).server.hostname == "mx.example.org"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nhostnme = 'x'\n", "server.hostnme: unknown key"),
        ("[nosuch]\nx = 1\n", "nosuch: unknown key"),
        ("[listen]\nsmtp = '127.0.0.1:70000'\n", "listen.smtp: port 70000 is out of range"),
        ("[listen]\nimap = 'localhost'\n", "listen.imap: 'localhost' is not 'host:port'"),
        ("[listen]\nimap = 143\n", "listen.imap: expected a string, got int"),
        ("[smtp]\nmax_recipients = 'ten'\n", "smtp.max_recipients: expected an integer"),
        ("[smtp]\nmax_recipients = 0\n", "smtp.max_recipients: must be greater than 0"),
        ("[auth]\nallow_plaintext = 'yes'\n", "auth.allow_plaintext: expected true or false"),
        ("server = 3\n", "server: expected a table"),
        ("[server]\nstore = 'mysql://x'\n", "server.store: must be 'sqlite'"),
        ("[tls]\ncert = '/nonexistent.pem'\n", "tls.cert: tls.cert and tls.key"),
        ("[server\n", "invalid TOML"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    """Each mistake is reported as one line that names the key and the problem."""
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path / "absent.toml")


def test_unwritable_data_dir(tmp_path: Path) -> None:
    """A data_dir that cannot be created is refused before anything starts."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    config = load(write(tmp_path, f'[server]\ndata_dir = "{blocker}/var"\n'))
    with pytest.raises(ConfigError, match=r"server\.data_dir"):
        check_data_dir(config)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:25", ("127.0.0.1", 25)),
        ("[::1]:143", ("::1", 143)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
    ],
)
def test_parse_address(value: str, expected: tuple[str, int]) -> None:
    assert parse_address(value) == expected


def test_server_workers(tmp_path: Path) -> None:
    """`[server] workers`: by default one per core this process may use; 1 or more."""
    assert Config().server.workers >= 1
    assert load(write(tmp_path, "[server]\nworkers = 3\n")).server.workers == 3
    for bad in ("0", "-1", "65", '"2"', "true"):
        with pytest.raises(ConfigError, match=r"server\.workers"):
            load(write(tmp_path, f"[server]\nworkers = {bad}\n"))
