"""`pillarbox dkim generate` and `pillarbox dns`: keys stored in the store, records
printed, unknown domains refused."""

from __future__ import annotations

from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest

from pillarbox.cli import build_parser, dkim_selectors
from tests.test_cli import run


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "pillarbox.toml"
    path.write_text('[server]\ndata_dir = "var"\nhostname = "mail.example.test"\n')
    return path


def test_selectors() -> None:
    """Default selector pbYYYYMM; a pair gets e/r suffixes; a given selector is kept."""
    [one] = dkim_selectors(None, ["ed25519-sha256"])
    assert one.startswith("pb20") and len(one) == 8
    assert dkim_selectors("s", ["ed25519-sha256", "rsa-sha256"]) == ["se", "sr"]
    assert dkim_selectors("mine", ["rsa-sha256"]) == ["mine"]


def test_parser_defaults() -> None:
    """Both algorithms unless told otherwise."""
    args = build_parser().parse_args(["dkim", "generate", "example.test"])
    assert (args.algorithm, args.selector) == ("both", None)
    args = build_parser().parse_args(["dns", "example.test"])
    assert args.domain == "example.test"


def test_generate_then_dns(config: Path) -> None:
    """generate stores an Ed25519 and an RSA key and prints their TXT records; dns prints
    a zone fragment that parses and carries both keys."""
    assert run(config, "domain", "add", "example.test").returncode == 0
    result = run(config, "dkim", "generate", "Example.TEST", "--selector", "t1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith('t1e._domainkey.example.test. IN TXT "v=DKIM1; k=ed25519; p=')
    assert lines[1].startswith('t1r._domainkey.example.test. IN TXT ( "v=DKIM1; k=rsa; p=')
    result = run(config, "dns", "example.test")
    assert result.returncode == 0, result.stderr
    zone = dns.zone.from_text(result.stdout, check_origin=False, relativize=False)
    names = {name.to_text() for name, _ in zone.iterate_rdatasets(dns.rdatatype.TXT)}
    assert {"t1e._domainkey.example.test.", "t1r._domainkey.example.test."} <= names


def test_generate_refuses_unknown_domain(config: Path) -> None:
    """Keys only for local domains: one line on stderr, exit 1."""
    result = run(config, "dkim", "generate", "elsewhere.test")
    assert result.returncode == 1
    assert "not a local domain" in result.stderr
