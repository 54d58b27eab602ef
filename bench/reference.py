"""The reference side: Postfix (SMTP) delivering over LMTP into Dovecot (IMAP, POP3, Maildir).

Both run as private instances out of one temporary directory, on loopback high ports, with
their own configuration, queue, state, logs and mail: nothing under /etc, /var/spool or
/var/mail is read or written apart from the packages' own binaries, Postfix's
``postfix-files`` list and the system users the packages created. The system's default
instances are never started or stopped.

- Dovecot: ``dovecot -F -c <dir>/dovecot.conf``, a child of this process. passdb and userdb
  are one passwd-file holding the same 100 accounts (plus the large-mailbox account) and the
  same password Pillarbox gets, hashed with argon2id and Pillarbox's parameters so that a
  login costs both sides the same (``--reference-passwords plain`` to skip hashing).
  Mail lives in ``<dir>/mail/<user>/Maildir`` owned by
  ``nobody`` (Dovecot refuses to access mail as root).
- Postfix: ``postfix -c <dir>/postfix start`` with its own ``queue_directory`` and
  ``data_directory``; ``example.test`` is a virtual mailbox domain whose transport is
  ``lmtp:inet:127.0.0.1:<dovecot lmtp port>``.

The Debian packages (dovecot-imapd, dovecot-pop3d, dovecot-lmtpd, postfix) are installed
with apt-get when missing; the machine's policy-rc.d is set to forbid service starts for the
duration, so the packages' postinst scripts do not start system instances on ports 25/143/110.

Stopping is idempotent and also registered with :mod:`atexit`, so an exception, Ctrl-C or
SIGTERM anywhere in a run still takes both instances down.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from bench.servers import (
    BIG_USER,
    DEFAULT_CONNECTION_LIMIT,
    DOMAIN,
    HOST,
    IDLE_USER,
    LOGIN_USER_COUNT,
    PASSWORD,
    USER_COUNT,
    Endpoint,
    Log,
    ServerError,
    ServerProcess,
    all_users,
    discard_dir,
    free_port,
    light_password_hash,
    login_users,
    make_run_dir,
    reap_stale,
    wait_for_greeting,
)

PACKAGES = ("dovecot-imapd", "dovecot-pop3d", "dovecot-lmtpd", "postfix")
REQUIRED_BINARIES = ("/usr/sbin/dovecot", "/usr/sbin/postfix", "/usr/sbin/postconf")
# Dovecot's LMTP server binary: its presence tells dovecot-lmtpd is installed.
LMTP_BINARY = "/usr/lib/dovecot/lmtp"
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
#: Each Dovecot ``imap`` process in IDLE takes one inotify instance to watch its Maildir;
#: past this per-uid limit (128 by default) Dovecot logs "Inotify instance limit ...
#: exceeded, disabling" and those sessions fall back to polling every 30 s
#: (mailbox_idle_check_interval). Raised for the run when too low, and restored on stop.
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
START_TIMEOUT = 60.0
#: Message n of a bulk-stored folder is dated this + n seconds (the corpus's Date: day).
MAILDIR_EPOCH = 1_748_858_400
#: Starts on fresh ports after one lost a port to another process (see `free_port`).
START_ATTEMPTS = 3
DIR_PREFIX = "pbref-"
#: Master pid files inside a run directory, with the word their command line contains.
STALE_PIDFILES = {
    "dovecot-run/master.pid": "dovecot",
    "postfix-queue/pid/master.pid": "master",
}

DOVECOT_CONF = """\
# Written by bench/reference.py: a private Dovecot instance for the benchmark.
base_dir = {root}/dovecot-run
state_dir = {root}/dovecot-state
instance_name = pillarbox-bench-{tag}
log_path = {root}/log/dovecot.log
info_log_path = {root}/log/dovecot.log
protocols = imap pop3 lmtp
listen = {host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 1
mail_max_userip_connections = {connection_limit}
default_process_limit = 1000
default_client_limit = {client_limit}
default_vsz_limit = 1G
login_trusted_networks = 127.0.0.0/8
recipient_delimiter =
lmtp_rcpt_check_quota = no

passdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
}}

namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
  }}
  mailbox Archive {{
    special_use = \\Archive
  }}
}}

service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {host}
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {host}
    port = {lmtp_port}
  }}
}}
service imap {{
  # One process per IMAP connection: room for idle_fanout's (--idle-connections).
  process_limit = {connection_limit}
}}
service pop3 {{
  process_limit = 1000
}}
protocol lmtp {{
  postmaster_address = postmaster@{domain}
}}
"""

POSTFIX_MAIN_CF = """\
# Written by bench/reference.py: a private Postfix instance for the benchmark.
compatibility_level = 3.6
queue_directory = {root}/postfix-queue
data_directory = {root}/postfix-data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = {root}/log/postfix.log
maillog_file_prefixes = {root}/log
myhostname = reference.bench.invalid
mydomain = bench.invalid
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost =
inet_interfaces = {host}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject
virtual_mailbox_domains = {domain}
virtual_transport = lmtp:inet:{host}:{lmtp_port}
lmtp_destination_concurrency_limit = 20
lmtp_destination_recipient_limit = 50
smtpd_client_connection_count_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_tls_security_level = none
smtp_tls_security_level = none
smtpd_peername_lookup = no
message_size_limit = 52428800
mailbox_size_limit = 0
biff = no
append_dot_mydomain = no
readme_directory = no
shlib_directory = /usr/lib/postfix
default_process_limit = 100
"""

# name type private unpriv chroot wakeup maxproc command. chroot is "n" everywhere: the private
# queue directory has no copy of /etc for a chroot jail.
POSTFIX_MASTER_CF = """\
# Written by bench/reference.py.
{host}:{smtp_port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def _run(
    cmd: list[str],
    timeout: float = 60.0,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run *cmd* capturing its output; the caller checks ``returncode``."""
    return subprocess.run(
        cmd, input=input, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def password_entry(scheme: str) -> str:
    """The passwd-file password field for the benchmark password.

    ``argon2id`` (default) hashes with argon2-cffi's defaults, the parameters Pillarbox
    uses (t=3, m=64 MiB, p=4), so a login costs the same CPU on both sides; Dovecot checks
    it through libsodium. Without argon2-cffi, ``doveadm pw -s ARGON2ID`` is used (its own
    parameters). ``plain`` stores the password as is (logins cost nothing).
    """
    if scheme == "plain":
        return "{PLAIN}" + PASSWORD
    try:
        from argon2 import PasswordHasher
    except ImportError:
        result = _run(["doveadm", "pw", "-s", "ARGON2ID", "-p", PASSWORD])
        if result.returncode != 0 or not result.stdout.startswith("{ARGON2ID}"):
            raise ServerError(f"doveadm pw failed: {result.stderr.strip()}") from None
        return result.stdout.strip()
    return "{ARGON2ID}" + PasswordHasher().hash(PASSWORD)


def packages_present() -> bool:
    return all(os.path.exists(p) for p in (*REQUIRED_BINARIES, LMTP_BINARY))


def ensure_packages(log: Log) -> None:
    """Install the Debian packages if any is missing, without starting system instances."""
    if packages_present():
        return
    if os.geteuid() != 0:
        raise ServerError(
            "Dovecot/Postfix are not installed and this is not root: "
            f"apt-get install {' '.join(PACKAGES)}"
        )
    log(f"installing {' '.join(PACKAGES)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # policy-rc.d exiting 101 tells invoke-rc.d "do not start anything" (Debian policy 9.3.3).
    saved = POLICY_RC_D.read_bytes() if POLICY_RC_D.exists() else None
    POLICY_RC_D.write_text(
        "#!/bin/sh\n# pillarbox bench: no service starts during install\nexit 101\n"
    )
    POLICY_RC_D.chmod(0o755)
    try:
        cmd = ["apt-get", "install", "-y", *PACKAGES]
        result = _run(cmd, timeout=900, env=env)
        if result.returncode != 0:
            log("apt-get install failed; running apt-get update and retrying")
            _run(["apt-get", "update"], timeout=900, env=env)
            result = _run(cmd, timeout=900, env=env)
        if result.returncode != 0:
            raise ServerError(f"apt-get install failed: {result.stderr.strip()[-500:]}")
    finally:
        if saved is None:
            POLICY_RC_D.unlink(missing_ok=True)
        else:
            POLICY_RC_D.write_bytes(saved)
    if not packages_present():
        raise ServerError("packages installed but binaries are still missing")


class ReferenceServers(ServerProcess):
    """Postfix + Dovecot in a temporary directory; ``start`` returns their endpoint."""

    side = "reference"

    def __init__(
        self,
        log: Log,
        keep: bool = False,
        user_count: int = USER_COUNT,
        password_scheme: str = "argon2id",
        connection_limit: int = DEFAULT_CONNECTION_LIMIT,
        login_user_count: int = LOGIN_USER_COUNT,
        login_password_scheme: str = "plain",
    ) -> None:
        """`login_password_scheme`: of login_heavy's accounts only (plain by default:
        Dovecot's fastest case, the bar issue 18 sets; Pillarbox keeps argon2id)."""
        self._log = log
        self._connection_limit = connection_limit
        self._user_count = user_count
        self._scheme = password_scheme
        self._login_users = login_users(login_user_count)
        self._login_scheme = login_password_scheme
        self._keep = keep
        self._root: Path | None = None
        self._dovecot: subprocess.Popen[bytes] | None = None
        self._postfix_started = False
        self._stopped = False
        self._versions: dict[str, str] = {}
        self._inotify_saved: str | None = None

    # -- setup -----------------------------------------------------------------------------

    def start(self) -> Endpoint:
        ensure_packages(self._log)
        atexit.register(self.stop)
        reap_stale(DIR_PREFIX, STALE_PIDFILES, self._log)
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                return self._start_once()
            except ServerError as exc:
                # Dovecot and Postfix take their ports by number (`free_port`): one taken
                # in the meantime by someone else is a new try on new ports, not a failure.
                if attempt == START_ATTEMPTS or "in use" not in str(exc):
                    raise
                self._log(f"a port was taken before the servers bound it; retrying ({exc})")
                self._teardown()
        raise AssertionError("unreachable")

    def _start_once(self) -> Endpoint:
        root = make_run_dir(DIR_PREFIX)
        self._root = root
        root.chmod(0o755)  # login processes run as dovenull and look up their sockets here
        ports = {
            "smtp_port": free_port(),
            "imap_port": free_port(),
            "pop3_port": free_port(),
            "lmtp_port": free_port(),
        }
        nobody = pwd.getpwnam("nobody")
        for sub in (
            "log",
            "mail",
            "dovecot-run",
            "dovecot-state",
            "postfix",
            "postfix-data",
            "postfix-queue",
        ):
            (root / sub).mkdir()
        os.chown(root / "mail", nobody.pw_uid, nobody.pw_gid)
        users = [*all_users(self._user_count), BIG_USER, IDLE_USER, *self._login_users]
        secret = password_entry(self._scheme)
        self._versions["password_scheme"] = secret.split("}", 1)[0].lstrip("{")
        login_secret = (
            secret if self._login_scheme == self._scheme else password_entry(self._login_scheme)
        )
        self._versions["login_heavy_password_scheme"] = login_secret.split("}", 1)[0][1:]
        # The idle_fanout account's light hash, as on the Pillarbox side (servers.IDLE_USER).
        light = "{ARGON2ID}" + light_password_hash() if self._scheme != "plain" else secret
        lines = []
        for user in users:
            home = root / "mail" / user
            home.mkdir()
            os.chown(home, nobody.pw_uid, nobody.pw_gid)
            entry = light if user == IDLE_USER else secret
            if user in self._login_users:
                entry = login_secret
            lines.append(f"{user}:{entry}:{nobody.pw_uid}:{nobody.pw_gid}::{home}::\n")
        (root / "passwd").write_text("".join(lines))
        (root / "passwd").chmod(0o640)
        shutil.chown(root / "passwd", "root", "dovecot")
        fmt = dict(
            root=root,
            host=HOST,
            domain=DOMAIN,
            uid=nobody.pw_uid,
            gid=nobody.pw_gid,
            tag=root.name,
            connection_limit=self._connection_limit,
            # The log, anvil and auth processes hold one connection per process.
            client_limit=max(4000, 2 * self._connection_limit + 1000),
            **ports,
        )
        conf = root / "dovecot.conf"
        conf.write_text(DOVECOT_CONF.format(**fmt))
        pf = root / "postfix"
        (pf / "main.cf").write_text(POSTFIX_MAIN_CF.format(**fmt))
        (pf / "master.cf").write_text(POSTFIX_MASTER_CF.format(**fmt))
        (root / "postfix-data").chmod(0o700)
        shutil.chown(root / "postfix-data", "postfix", "postfix")

        self._raise_inotify_limit(self._connection_limit + 500)
        self._versions["dovecot"] = _run(["dovecot", "--version"]).stdout.strip()
        self._versions["postfix"] = _run(
            ["postconf", "-c", str(pf), "-h", "mail_version"]
        ).stdout.strip()

        self._log(f"starting Dovecot {self._versions['dovecot']} in {root}")
        # The child keeps its own copy of the file; ours is closed at once.
        with open(root / "log" / "dovecot.stdout", "wb") as out:
            self._dovecot = subprocess.Popen(
                ["dovecot", "-F", "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        dovecot_alive = lambda: self._dovecot is not None and self._dovecot.poll() is None  # noqa: E731
        try:
            wait_for_greeting(ports["imap_port"], b"* OK", START_TIMEOUT, dovecot_alive)
            wait_for_greeting(ports["pop3_port"], b"+OK", START_TIMEOUT, dovecot_alive)
            wait_for_greeting(ports["lmtp_port"], b"220", START_TIMEOUT, dovecot_alive)
        except ServerError as exc:
            raise ServerError(f"Dovecot: {exc}; log: {self._tail('dovecot.log')}") from exc

        self._log(f"starting Postfix {self._versions['postfix']}")
        self._postfix_started = True
        result = _run(["postfix", "-c", str(pf), "start"], timeout=120)
        if result.returncode != 0:
            raise ServerError(
                f"postfix start failed ({result.returncode}): {result.stderr.strip()[-800:]}"
                f"; log: {self._tail('postfix.log')}"
            )
        try:
            wait_for_greeting(ports["smtp_port"], b"220", START_TIMEOUT)
        except ServerError as exc:
            raise ServerError(f"Postfix: {exc}; log: {self._tail('postfix.log')}") from exc
        return Endpoint(
            side=self.side,
            users=all_users(self._user_count),
            login_users=self._login_users,
            smtp_port=ports["smtp_port"],
            imap_port=ports["imap_port"],
            pop3_port=ports["pop3_port"],
            lmtp_port=ports["lmtp_port"],
            server_pid=self._dovecot.pid,
            bulk_store=self.write_maildir,
        )

    def write_maildir(self, user: str, messages: Sequence[tuple[str, bytes]], first: int) -> None:
        """Store *messages* in *user*'s INBOX as files in ``Maildir/cur``, as Dovecot's LMTP
        would have: LF line ends (``mail_save_crlf = no``), its ``Return-Path``,
        ``Delivered-To`` and ``Received`` lines on top, the sizes in the name (``S=``, and
        ``W=`` with CRLF) so nothing is stat'ed, owned by the mail user. Dovecot finds and
        indexes them at the next sync of the mailbox (the build's STATUS), giving UIDs in
        name order, which is the order of *first*, *first* + 1, ...

        For the large_mailbox set-up only: LMTP into Dovecot stores ~250 messages a second
        here, so 100,000 took minutes of both cores while the Pillarbox side was building
        too; the files take seconds. The Maildir must exist (a login that created a
        mailbox made it)."""
        assert self._root is not None
        nobody = pwd.getpwnam("nobody")
        cur = self._root / "mail" / user / "Maildir" / "cur"
        if not cur.is_dir():
            raise ServerError(f"no Maildir for {user} at {cur.parent}")
        stamp = MAILDIR_EPOCH
        date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        for offset, (sender, message) in enumerate(messages):
            n = first + offset
            top = (
                f"Return-Path: <{sender}>\r\n"
                f"Delivered-To: {user}\r\n"
                f"Received: from reference.bench.invalid ([{HOST}])\r\n"
                f"\tby reference.bench.invalid with LMTP\r\n"
                f"\tid bench{n:07d}\r\n"
                f"\t(envelope-from <{sender}>)\r\n"
                f"\tfor <{user}>; {date}\r\n"
            ).encode()
            crlf = top + message
            data = crlf.replace(b"\r\n", b"\n")
            # The time prefix orders the files (Dovecot gives UIDs to new names by it).
            name = f"{stamp + n}.M{n}P{os.getpid()}.bench,S={len(data)},W={len(crlf)}:2,"
            path = cur / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, data)
                os.fchown(fd, nobody.pw_uid, nobody.pw_gid)
            finally:
                os.close(fd)
            os.utime(path, (stamp + n, stamp + n))

    def _raise_inotify_limit(self, needed: int) -> None:
        """Give Dovecot's IDLE sessions an inotify instance each (see INOTIFY_INSTANCES)."""
        try:
            current = INOTIFY_INSTANCES.read_text().strip()
            if int(current) < needed:
                INOTIFY_INSTANCES.write_text(f"{needed}\n")
                self._inotify_saved = current
                self._log(f"fs.inotify.max_user_instances {current} -> {needed} for this run")
        except (OSError, ValueError) as exc:
            self._log(f"cannot raise fs.inotify.max_user_instances ({exc}): Dovecot may poll")
        with contextlib.suppress(OSError):
            self._versions["inotify_max_user_instances"] = INOTIFY_INSTANCES.read_text().strip()

    def describe(self) -> dict[str, str]:
        return {
            **self._versions,
            "delivery": "Postfix smtpd -> qmgr -> lmtp -> Dovecot LMTP -> Maildir",
            "mail_fsync": "Dovecot default (optimized)",
        }

    def _tail(self, name: str, size: int = 1500) -> str:
        if self._root is None:
            return ""
        path = self._root / "log" / name
        try:
            return path.read_text(errors="replace")[-size:]
        except OSError:
            return "(no log)"

    # -- teardown --------------------------------------------------------------------------

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._teardown()

    def _teardown(self) -> None:
        """Stop whatever runs and discard the directory; `start` may begin again after."""
        root, self._root = self._root, None
        if root is not None and self._postfix_started:
            pf = str(root / "postfix")
            with contextlib.suppress(Exception):
                _run(["postfix", "-c", pf, "stop"], timeout=60)
            self._kill_pidfile(root / "postfix-queue" / "pid" / "master.pid")
        self._postfix_started = False
        if self._dovecot is not None:
            proc, self._dovecot = self._dovecot, None
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
        if self._inotify_saved is not None:
            with contextlib.suppress(OSError):
                INOTIFY_INSTANCES.write_text(self._inotify_saved + "\n")
            self._inotify_saved = None
        if root is not None and not self._keep:
            discard_dir(root)
        elif root is not None:
            self._log(f"kept reference server files in {root}")

    @staticmethod
    def _kill_pidfile(path: Path) -> None:
        """Postfix's master if ``postfix stop`` left it running: SIGTERM, then SIGKILL."""
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)
