"""A private Postfix instance for interoperability tests: an independently written MTA.

Debian's Postfix (installed by scripts/install-test-tools; the system instance is never
started) runs out of a temporary directory with its own ``main.cf``, ``master.cf``, queue
and log, listening on 127.0.0.1 at a free port. It relays every domain it is told about
through ``transport_maps`` (``smtp:[127.0.0.1]:PORT`` or ``lmtp:inet:127.0.0.1:PORT``),
accepts mail from loopback only (``mynetworks``), and offers STARTTLS with a self-signed
certificate. Nothing under /etc/postfix or /var/spool/postfix is written.

Needs root (Postfix's daemons drop to the ``postfix`` user) — as the test machines are.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bench.reference import POSTFIX_MASTER_CF

from pillarbox.server.tls import ensure_self_signed

POSTFIX = "/usr/sbin/postfix"

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = {root}/postfix.log
maillog_file_prefixes = {root}
myhostname = postfix.peer.test
mydomain = peer.test
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = {domains}
transport_maps = texthash:{root}/transport
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_tls_security_level = may
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtp_tls_security_level = may
lmtp_tls_security_level = none
smtpd_peername_lookup = no
smtp_host_lookup = native
disable_dns_lookups = yes
append_dot_mydomain = no
readme_directory = no
shlib_directory = /usr/lib/postfix
delay_warning_time = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""

# The same service table as the benchmark's reference Postfix (smtpd on one address).
MASTER_CF = POSTFIX_MASTER_CF.replace("{host}:{smtp_port}", "127.0.0.1:{port}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostfixPeer:
    """``with PostfixPeer({"b.test": "lmtp:inet:127.0.0.1:2424"}) as pf: pf.port``.

    Its directory is a fresh one in the system's temp dir, not a pytest tmp_path: Postfix's
    daemons run as the `postfix` user and must reach it, and pytest's are private to root.
    """

    def __init__(self, transports: dict[str, str]) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pillarbox-postfix-"))
        self.transports = transports
        self.port = free_port()
        self._started = False

    def __enter__(self) -> PostfixPeer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    def start(self) -> None:
        root = self.root
        for sub in ("etc", "queue", "data"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        (root / "data").chmod(0o700)
        shutil.chown(root / "data", "postfix", "postfix")
        cert, key = ensure_self_signed(root / "tls", "postfix.peer.test")
        fmt = {
            "root": root,
            "port": self.port,
            "domains": " ".join(self.transports),
            "cert": cert,
            "key": key,
        }
        (self.config_dir / "main.cf").write_text(MAIN_CF.format(**fmt))
        (self.config_dir / "master.cf").write_text(MASTER_CF.format(**fmt))
        (root / "transport").write_text(
            "".join(f"{domain} {where}\n" for domain, where in self.transports.items())
        )
        self._started = True
        result = self.postfix("start")
        if result.returncode != 0:
            raise RuntimeError(f"postfix start: {result.stderr.strip()} {self.log()[-800:]}")
        self._wait_for_greeting(60.0)

    def postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [POSTFIX, "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def _wait_for_greeting(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.settimeout(5)
                    if s.recv(512).startswith(b"220"):
                        return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.1)  # polling a port that is not open yet
        raise RuntimeError(f"postfix did not greet on {self.port}: {last} {self.log()[-800:]}")

    def log(self) -> str:
        try:
            return (self.root / "postfix.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            self._stop_master()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _stop_master(self) -> None:
        with contextlib.suppress(Exception):
            self.postfix("stop")
        pid_file = self.root / "queue" / "pid" / "master.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().strip())
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                time.sleep(0.1)  # waiting for master to exit after "postfix stop"
            os.kill(pid, 9)
