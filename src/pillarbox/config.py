"""Static configuration: frozen dataclasses loaded from one TOML file and validated.

Every setting has a default, so no file is needed to run. Loading refuses unknown
keys, wrong types and impossible values with one `ConfigError` whose message names
the key path ("listen.smtp: port 70000 is out of range"). Dynamic data (domains,
accounts, aliases) lives in the store, never here. Lower layers receive plain values
taken from these objects, never the whole `Config`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A configuration problem; the message is one line naming the key."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    hostname: str = "mail.example.test"
    data_dir: str = "./var"
    # "sqlite" (embedded default) or "postgres" (with [store] dsn; several nodes may share
    # one database). A postgresql:// URL here is the same as "postgres" with that dsn.
    store: str = "sqlite"
    log_level: str = "info"
    # This node's name in claims (outbound queue, fetch sources), blob read leases and
    # change notifications: unique per node (two nodes on one machine must set it).
    # Empty: the machine's host name, which stays the same across restarts.
    node_id: str = ""
    # Worker processes serving the listeners (issue 18): one Python process uses one core.
    # 1: the single process of before; more: a master starts that many workers, each a
    # whole server on the same ports (docs/design.md "Several workers").
    workers: int = field(default_factory=lambda: default_workers())


def default_workers() -> int:
    """The number of cores this process may run on (the `[server] workers` default)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """The PostgreSQL backend ([server] store = "postgres")."""

    dsn: str = ""  # postgresql://user@host:5432/database
    pool_min: int = 2
    pool_max: int = 20
    # Prepared-statement cache per connection; 0 behind PgBouncer in transaction mode.
    statement_cache_size: int = 100


@dataclass(frozen=True, slots=True)
class ListenConfig:
    """'host:port' per listener; an empty string disables it. A contract: keep names."""

    smtp: str = "127.0.0.1:2525"
    submission: str = "127.0.0.1:2587"
    submissions: str = "127.0.0.1:2465"
    imap: str = "127.0.0.1:2143"
    imaps: str = "127.0.0.1:2993"
    pop3: str = "127.0.0.1:2110"
    pop3s: str = "127.0.0.1:2995"
    http: str = "127.0.0.1:8080"
    lmtp: str = ""  # RFC 2033, for another MTA in front; disabled by default


@dataclass(frozen=True, slots=True)
class TlsConfig:
    cert: str = ""  # PEM chain; empty: a self-signed one is generated in data_dir/tls
    key: str = ""


@dataclass(frozen=True, slots=True)
class AuthConfig:
    # Plain-text passwords (LOGIN, AUTH PLAIN, USER/PASS) are accepted over TLS, and from
    # loopback addresses when `allow_plaintext_loopback`; anywhere if `allow_plaintext`.
    allow_plaintext: bool = False
    allow_plaintext_loopback: bool = True
    fail_delay: float = 0.5  # seconds after the first failure from an IP, doubling
    fail_delay_max: float = 15.0
    fail_window: float = 900.0  # failures older than this are forgotten
    # Per account, from addresses that have not logged in to it before: after
    # `account_fail_free` failures, attempts are spaced `account_fail_delay` apart,
    # doubling per failure up to `account_fail_delay_max` (services/account_throttle.py).
    account_fail_free: int = 3
    account_fail_delay: float = 0.5
    account_fail_delay_max: float = 60.0
    # Seconds a successful login's verified credentials are remembered (as a keyed
    # digest, never the password) so that the next login with them skips argon2id
    # (services/credential_cache.py; Dovecot's auth_cache_ttl). 0 turns it off.
    credential_cache_ttl: float = 3600.0


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    max_connections: int = 2000
    max_connections_per_ip: int = 50
    connection_rate_per_ip: int = 600  # new connections a minute from one IP; 0 = no limit
    # IMAP, POP3 and submission (server/preauth.py): a connection must log in within
    # `login_timeout` seconds; at most `max_unauthenticated` wait for login per listener
    # (the oldest of the address holding the most is closed to make room for a new one).
    login_timeout: float = 60.0
    max_unauthenticated: int = 200
    # IMAP and POP3 sessions of one account from one address (Dovecot's
    # mail_max_userip_connections); 0 = no limit.
    max_connections_per_account: int = 10


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    max_message_size: int = 64 * 1024 * 1024
    max_recipients: int = 100
    max_line_length: int = 4096  # command lines; body lines up to max_body_line_length
    max_body_line_length: int = 1_000_000
    max_header_size: int = 1024 * 1024
    max_bad_commands: int = 20
    idle_timeout: float = 300.0  # RFC 5321 §4.5.3.2 suggests at least 5 minutes
    save_submitted_to_sent: bool = False
    # A bare LF in message content: "normalize" (taken as a line end and stored as CRLF,
    # as Postfix 3.9 does by default) or "reject" (554 5.6.0). A bare CR is always refused,
    # and only CRLF.CRLF ends the data in either mode (no SMTP smuggling).
    bare_newline: str = "normalize"


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """Outbound delivery: the queue runner that sends to other servers."""

    relay: str = ""  # smarthost "host:port"; empty: deliver to each domain's MX
    relay_user: str = ""
    relay_password_file: str = ""  # the password, in a file readable only by Pillarbox
    relay_security: str = "starttls"  # "tls" (implicit, port 465) or "starttls" (required)
    # Verify the relay's certificate (system CAs, host name). Off only for a self-signed
    # smarthost on a network you trust; MX hosts are never verified (see queue/client.py).
    relay_tls_verify: bool = True
    # The local address outbound connections come from ("" = the system's choice): the
    # address SPF records name when a host has several (Postfix: smtp_bind_address).
    source_address: str = ""
    port: int = 25  # the port MX hosts are connected to
    allow_private_networks: bool = False  # connect to loopback/private/link-local MX hosts
    max_connections: int = 50  # outbound SMTP connections in total
    max_connections_per_domain: int = 4
    connect_timeout: float = 30.0
    command_timeout: float = 300.0  # RFC 5321 §4.5.3.2 (5 minutes; 10 for the final dot)
    retry_initial: float = 300.0  # first retry after 5 minutes, then doubling
    retry_max: float = 4 * 3600.0  # never more than 4 hours between attempts
    queue_lifetime: float = 5 * 86400.0  # bounce after 5 days
    delay_warning: float = 4 * 3600.0  # RFC 3464 "delayed" DSN after 4 hours; 0: never
    dkim_sign: bool = True  # sign submitted mail with the From: domain's DKIM key
    # Seconds a node's claim on a queue entry holds before another node may take it (a
    # node that died mid-run). 0: long enough for a whole attempt at the timeouts above
    # (queue/runner.py lease_for); a shorter lease must still outlast one attempt, or
    # two nodes may send the same message.
    claim_lease: float = 0.0


@dataclass(frozen=True, slots=True)
class DnsConfig:
    nameservers: list[str] = field(default_factory=list)  # "ip" or "ip:port"; empty: system
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class MailAuthConfig:
    """Checks of mail other servers deliver to the `smtp` listener (SPF, DKIM, DMARC)."""

    enabled: bool = True  # add Authentication-Results (RFC 8601) to received mail
    dmarc_reject: bool = True  # p=reject and DMARC fail: 550 5.7.1 at the end of DATA
    dmarc_quarantine: bool = True  # p=quarantine and DMARC fail: deliver to Junk
    # Clients in these networks are not checked (another MTA or a filter in front).
    trusted_networks: list[str] = field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])


@dataclass(frozen=True, slots=True)
class ImapConfig:
    max_line_length: int = 64 * 1024
    max_literal_size: int = 64 * 1024 * 1024  # announced as APPENDLIMIT
    idle_timeout: float = 1800.0  # RFC 9051 §5.4: at least 30 minutes
    max_commands_in_flight: int = 32
    # RFC 7888 §4: announce LITERAL- instead of LITERAL+; {n+} over 4096 octets refused
    literal_minus: bool = False
    # RFC 5465 §5.8: output a NOTIFY session may leave unread (bytes its client has not
    # taken) before it is told NOTIFICATIONOVERFLOW and NOTIFY is turned off
    notify_max_unread: int = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Pop3Config:
    idle_timeout: float = 600.0  # RFC 1939 §3: at least 10 minutes
    max_line_length: int = 512


@dataclass(frozen=True, slots=True)
class FetcherConfig:
    """Fetching the users' mail from their accounts at other providers (issue 15)."""

    # Connect to loopback, private (RFC 1918, RFC 4193), link-local and other non-global
    # addresses: off, so that a user cannot make the server probe its own network.
    allow_private_networks: bool = False
    ca_file: str = ""  # PEM CAs trusted besides the system's (a provider's own CA)
    max_message_size: int = 64 * 1024 * 1024  # larger messages are left on the server
    timeout: float = 60.0  # seconds for a connection or one reply
    max_concurrent: int = 4  # scheduled runs at once (`pillarbox serve`)
    max_idle: int = 100  # IMAP sources watched with IDLE at once, one connection each
    retry_max: float = 3600.0  # seconds: the cap of the back-off after failed runs
    rescan: float = 30.0  # seconds between readings of the sources (new, removed, resumed)


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The webmail on the `http` listener (web/)."""

    # Reverse proxies (addresses or networks) whose X-Forwarded-For and X-Forwarded-Proto
    # are believed: the client address for sign-in throttling and the https scheme for
    # Secure cookies. Empty: the headers are ignored (anyone could send them).
    trusted_proxies: list[str] = field(default_factory=list)
    # Seconds a connection may stay idle between requests, and at most take to send a
    # request's line and header fields (a slow sender is dropped: slowloris).
    keep_alive_timeout: float = 5.0
    # Seconds a connection may send nothing in the middle of a request body.
    read_timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    listen: ListenConfig = field(default_factory=ListenConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    imap: ImapConfig = field(default_factory=ImapConfig)
    pop3: Pop3Config = field(default_factory=Pop3Config)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    mailauth: MailAuthConfig = field(default_factory=MailAuthConfig)
    fetcher: FetcherConfig = field(default_factory=FetcherConfig)
    web: WebConfig = field(default_factory=WebConfig)
    store: StoreConfig = field(default_factory=StoreConfig)

    @property
    def data_path(self) -> Path:
        return Path(self.server.data_dir).expanduser().resolve()

    @property
    def node_name(self) -> str:
        """`[server] node_id`, or the machine's host name."""
        return self.server.node_id or socket.gethostname()

    @property
    def store_dsn(self) -> str:
        """The PostgreSQL DSN: `[store] dsn`, or the URL given as `[server] store`."""
        if self.server.store.startswith(_PG_SCHEMES):
            return self.server.store
        return self.store.dsn


_PG_SCHEMES = ("postgresql://", "postgres://")
MAX_WORKERS = 64  # more processes than that would be a typo, not a machine


def parse_address(value: str, key: str = "address") -> tuple[str, int]:
    """Split 'host:port' ('[::1]:143' for IPv6) and check the port range."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{key}: {value!r} is not 'host:port'")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{key}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{key}: port {port} is out of range 0-65535")
    return host, port


_POSITIVE = {
    "web.keep_alive_timeout",
    "web.read_timeout",
    "limits.max_connections",
    "limits.max_connections_per_ip",
    "smtp.max_message_size",
    "smtp.max_recipients",
    "smtp.max_line_length",
    "smtp.max_body_line_length",
    "smtp.max_header_size",
    "smtp.max_bad_commands",
    "smtp.idle_timeout",
    "imap.max_line_length",
    "imap.max_literal_size",
    "imap.idle_timeout",
    "imap.max_commands_in_flight",
    "imap.notify_max_unread",
    "pop3.idle_timeout",
    "pop3.max_line_length",
    "delivery.max_connections",
    "delivery.max_connections_per_domain",
    "delivery.connect_timeout",
    "delivery.command_timeout",
    "delivery.retry_initial",
    "delivery.retry_max",
    "delivery.queue_lifetime",
    "dns.timeout",
    "fetcher.max_message_size",
    "fetcher.timeout",
    "fetcher.max_concurrent",
    "fetcher.max_idle",
    "fetcher.retry_max",
    "fetcher.rescan",
}


def _build(cls: type[Any], data: dict[str, Any], path: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        key_path = f"{path}.{key}" if path else key
        if key not in known:
            raise ConfigError(f"{key_path}: unknown key")
        expected = hints[key]
        if dataclasses.is_dataclass(expected):
            if not isinstance(value, dict):
                raise ConfigError(f"{key_path}: expected a table")
            values[key] = _build(typing.cast(type[Any], expected), value, key_path)
            continue
        values[key] = _check_type(value, expected, key_path)
    return cls(**values)


def _check_type(value: Any, expected: Any, key_path: str) -> Any:
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key_path}: expected a number, got {type(value).__name__}")
        value = float(value)
    elif expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key_path}: expected an integer, got {type(value).__name__}")
    elif expected is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key_path}: expected true or false, got {type(value).__name__}")
    elif expected is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key_path}: expected a string, got {type(value).__name__}")
    elif typing.get_origin(expected) is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key_path}: expected a list of strings")
        value = list(value)
    elif isinstance(expected, types.UnionType):  # pragma: no cover - no such keys yet
        raise ConfigError(f"{key_path}: unsupported type")
    if key_path in _POSITIVE and value <= 0:
        raise ConfigError(f"{key_path}: must be greater than 0")
    return value


def _validate(config: Config) -> None:
    for f in dataclasses.fields(ListenConfig):
        value = getattr(config.listen, f.name)
        if value:
            parse_address(value, f"listen.{f.name}")
    if not config.server.hostname or " " in config.server.hostname:
        raise ConfigError("server.hostname: must be a host name")
    if config.server.log_level not in {"debug", "info", "warning", "error"}:
        raise ConfigError("server.log_level: must be one of debug, info, warning, error")
    store = config.server.store
    if store not in ("sqlite", "postgres") and not store.startswith(_PG_SCHEMES):
        raise ConfigError("server.store: must be 'sqlite' or 'postgres'")
    if store == "postgres" and not config.store.dsn.startswith(_PG_SCHEMES):
        raise ConfigError("store.dsn: must be a postgresql:// URL when server.store is postgres")
    if not 1 <= config.store.pool_min <= config.store.pool_max:
        raise ConfigError("store.pool_min: must be at least 1 and at most store.pool_max")
    if config.store.statement_cache_size < 0:
        raise ConfigError("store.statement_cache_size: must not be negative")
    if not 1 <= config.server.workers <= MAX_WORKERS:
        raise ConfigError(f"server.workers: must be from 1 to {MAX_WORKERS}")
    if " " in config.server.node_id or "|" in config.server.node_id:
        raise ConfigError("server.node_id: must not contain spaces or '|'")
    if bool(config.tls.cert) != bool(config.tls.key):
        raise ConfigError("tls.cert: tls.cert and tls.key must be set together")
    for key in ("cert", "key"):
        value = getattr(config.tls, key)
        if value and not Path(value).is_file():
            raise ConfigError(f"tls.{key}: {value} is not a readable file")
    if config.limits.connection_rate_per_ip < 0:
        raise ConfigError("limits.connection_rate_per_ip: must be 0 (no limit) or more")
    if config.smtp.bare_newline not in {"normalize", "reject"}:
        raise ConfigError("smtp.bare_newline: must be 'normalize' or 'reject'")
    _validate_delivery(config.delivery)
    for i, server in enumerate(config.dns.nameservers):
        _nameserver(server, f"dns.nameservers[{i}]")
    for i, net in enumerate(config.mailauth.trusted_networks):
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ConfigError(f"mailauth.trusted_networks[{i}]: {net!r} is not a network") from None
    for i, net in enumerate(config.web.trusted_proxies):
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ConfigError(f"web.trusted_proxies[{i}]: {net!r} is not a network") from None
    if config.fetcher.ca_file and not Path(config.fetcher.ca_file).is_file():
        raise ConfigError(f"fetcher.ca_file: {config.fetcher.ca_file} is not a readable file")
    if config.auth.fail_delay < 0 or config.auth.fail_delay_max < config.auth.fail_delay:
        raise ConfigError("auth.fail_delay_max: must be at least auth.fail_delay (>= 0)")
    if config.auth.credential_cache_ttl < 0:
        raise ConfigError("auth.credential_cache_ttl: must be >= 0 (0 turns the cache off)")


def _validate_delivery(d: DeliveryConfig) -> None:
    if d.relay:
        parse_address(d.relay, "delivery.relay")
    if d.relay_security not in {"tls", "starttls"}:
        raise ConfigError("delivery.relay_security: must be 'tls' or 'starttls'")
    if bool(d.relay_user) != bool(d.relay_password_file):
        raise ConfigError("delivery.relay_user: relay_user and relay_password_file go together")
    if d.relay_password_file and not Path(d.relay_password_file).is_file():
        raise ConfigError(f"delivery.relay_password_file: {d.relay_password_file} is not a file")
    if not 0 < d.port <= 65535:
        raise ConfigError(f"delivery.port: {d.port} is out of range 1-65535")
    if d.retry_max < d.retry_initial:
        raise ConfigError("delivery.retry_max: must be at least delivery.retry_initial")
    if d.source_address:
        try:
            ipaddress.ip_address(d.source_address)
        except ValueError:
            raise ConfigError(
                f"delivery.source_address: {d.source_address!r} is not an IP address"
            ) from None
    if d.delay_warning < 0:
        raise ConfigError("delivery.delay_warning: must be 0 (never) or more")
    if d.claim_lease < 0:
        raise ConfigError("delivery.claim_lease: must be 0 (computed) or more")


def _nameserver(value: str, key: str) -> tuple[str, int]:
    """'ip' or 'ip:port' ('[::1]:53' for IPv6 with a port) of a DNS server."""
    try:
        return str(ipaddress.ip_address(value)), 53
    except ValueError:
        pass
    host, port = parse_address(value, key)
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        raise ConfigError(f"{key}: {value!r} is not an IP address") from None


def nameservers(config: DnsConfig) -> list[tuple[str, int]]:
    """The configured DNS servers as (ip, port); empty: the system's."""
    return [_nameserver(v, "dns.nameservers") for v in config.nameservers]


def check_data_dir(config: Config) -> None:
    """Refuse a data directory that cannot be created or written."""
    path = config.data_path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"server.data_dir: cannot create {path}: {exc.strerror}") from None
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"server.data_dir: {path} is not a writable directory")


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate a configuration; None means defaults (or $PILLARBOX_CONFIG)."""
    if path is None:
        path = os.environ.get("PILLARBOX_CONFIG") or None
    if path is None:
        config = Config()
    else:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config: {path}: no such file") from None
        except OSError as exc:
            raise ConfigError(f"config: {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config: {path}: invalid TOML: {exc}") from None
        config = _build(Config, data, "")
        if config.server.data_dir and not Path(config.server.data_dir).is_absolute():
            # A relative data_dir is relative to the config file, not the working directory.
            base = Path(path).resolve().parent
            server = dataclasses.replace(config.server, data_dir=str(base / config.server.data_dir))
            config = dataclasses.replace(config, server=server)
    _validate(config)
    return config
