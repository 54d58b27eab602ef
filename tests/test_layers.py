"""The import rules of docs/design.md, as one table, checked against every module's imports.

The check fails closed: a module whose layer is not in `LAYERS` is an error, and so is a
third-party package its layer does not list. Adding a package under `src/pillarbox/` or a
new dependency therefore means adding a line here, and the line is where the decision is
reviewed. The imports come from the source (`tests.import_graph`), so imports inside
functions count like the ones at the top.

Patterns name imports relative to `pillarbox`: ``"store.*"`` is the layer `store` and
every module in it, ``"store.api"`` exactly that module, ``"store"`` exactly the package
`pillarbox.store` itself (its `__init__`), and ``"*"`` anything. Standard-library modules
(`sys.stdlib_module_names`) are allowed everywhere except the ones a layer denies.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.import_graph import imports, modules

STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}
ANYTHING = frozenset({"*"})


@dataclass(frozen=True)
class Rule:
    """What one layer may import: pillarbox patterns, third-party top-level packages, and
    standard-library modules it must not use."""

    pillarbox: frozenset[str] = frozenset()
    third_party: frozenset[str] = frozenset()
    stdlib_denied: frozenset[str] = frozenset()


def rule(
    *pillarbox: str, third_party: Iterable[str] = (), stdlib_denied: Iterable[str] = ()
) -> Rule:
    return Rule(frozenset(pillarbox), frozenset(third_party), frozenset(stdlib_denied))


# The pure layers compute on values and never wait on anything: no event loop, sockets,
# TLS or threads, so they run the same in a test, a thread pool or a fuzzer.
NO_IO = ("asyncio", "socket", "ssl", "selectors", "threading")
# What every front-end may use besides itself. `message` is pure and serves IMAP's
# section ranges (docs/design.md, "Front-ends may use message/"); `log` gives connection
# ids. Never `store` (front-ends go through `services`), never another front-end
# (submission enqueues through `services`, the queue worker picks it up).
FRONT_END = ("proto.*", "services.*", "model.*", "rules.*", "config", "message.*", "log")

LAYERS: dict[str, Rule] = {
    # `pillarbox/__init__.py` runs before any other module of the package is imported,
    # so whatever it imported would become a dependency of every layer (model included).
    "__init__": rule(),
    # Plain values that cross layer boundaries: the leaf every layer may import.
    "model": rule("model.*", stdlib_denied=NO_IO),
    # Pure domain rules (address and domain normalisation, mailbox-name validity,
    # UIDVALIDITY, quotas), used once by the store, services and front-ends alike.
    # `idna`: IDNA 2008 + UTS #46 for domain names, which the standard library lacks.
    "rules": rule("rules.*", "model.*", third_party=["idna"], stdlib_denied=NO_IO),
    # Sans-I/O protocol cores (docs/design.md "The protocol cores").
    "proto": rule("proto.*", "model.*", stdlib_denied=NO_IO),
    # RFC 5322/MIME, parsed once; pure.
    "message": rule("message.*", "model.*", stdlib_denied=NO_IO),
    # SPF, DKIM, DMARC over an injected resolver; `dns` is dnspython for the real one,
    # `dkim` is dkimpy (signing and verifying), `spf` is pyspf, `publicsuffixlist` gives
    # DMARC's organisational domain from the list it ships, `cryptography` makes keys.
    "mailauth": rule(
        "mailauth.*",
        "message.*",
        "model.*",
        third_party=["dns", "dkim", "spf", "publicsuffixlist", "cryptography"],
    ),
    # Persistence only. Its database drivers and nothing else: `sqlite3` is stdlib, and
    # psycopg (+ its pool) or asyncpg for the PostgreSQL backend.
    "store": rule(
        "store.*", "model.*", "rules.*", third_party=["psycopg", "psycopg_pool", "asyncpg"]
    ),
    # Policy. The store only through its contract (`api`), its errors and the package
    # itself, never a concrete backend; argon2 hashes passwords (`services.auth`),
    # `cryptography` encrypts fetch-source passwords at rest (`services.fetch_sources`).
    "services": rule(
        "services.*",
        "store",
        "store.api",
        "store.errors",
        "model.*",
        "rules.*",
        "message.*",
        "mailauth.*",
        "config",
        third_party=["argon2", "cryptography"],
    ),
    # Front-ends, each with the third-party packages it uses or is planned to use:
    # server: `cryptography` makes the self-signed development certificate (server/tls.py).
    "server": rule(*FRONT_END, "server.*", third_party=["cryptography"]),
    # queue: `aiosmtplib` speaks SMTP to other servers, `dns` (dnspython) finds their MX.
    "queue": rule(*FRONT_END, "queue.*", third_party=["aiosmtplib", "dns"]),
    # fetcher: a client of other providers (POP3, IMAP); the stdlib's imaplib and ssl and
    # our own POP3 client suffice, nothing third-party.
    "fetcher": rule(*FRONT_END, "fetcher.*"),
    # web: Starlette (ASGI app), Jinja2 (templates) and MarkupSafe (its escaped-text type,
    # for text we made safe ourselves), nh3 (HTML sanitising of mail bodies), Hypercorn
    # (the HTTP server, run on the process's event loop: web/listener.py).
    # Not itsdangerous: Starlette's session middleware uses it, our sessions are ids.
    "web": rule(
        *FRONT_END,
        "web.*",
        third_party=["starlette", "jinja2", "markupsafe", "nh3", "hypercorn"],
    ),
    # Several worker processes of one server (`[server] workers`, issue 18): the master
    # that starts and watches them, the hub that carries the change bus between them,
    # and the state they share in memory (connection caps, verified credentials). Only
    # app.py wires it; services and front-ends see their own Protocols, never this.
    "workers": rule(
        "workers.*",
        "model.*",
        "config",
        "log",
        "store.api",
        "store.changes",
        "store.errors",
    ),
    # Lower layers get plain arguments, never these; they depend on nothing but values.
    "config": rule("config", "model.*"),
    # log: escaping client text (rules.printable: stdlib only) before it is written.
    "log": rule("log", "model.*", "rules.printable"),
    # The composition root and the command line wire everything; nothing imports them
    # (no other layer lists them).
    "app": Rule(ANYTHING, ANYTHING),
    # The store backend a config names, for `app` and the CLI (which would otherwise
    # import every front-end with `app` to open the store), and the loop both run on.
    "backends": rule("backends", "config", "model.*", "store.*"),
    "eventloop": rule("eventloop", third_party=("uvloop",)),
    "cli": Rule(ANYTHING, ANYTHING),
    "__main__": Rule(ANYTHING, ANYTHING),
}


def layer_of(module: str) -> str:
    """`pillarbox.store.sqlite` → `store`; the package itself → `__init__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _matches(pattern: str, relative: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        base = pattern[:-2]
        return relative == base or relative.startswith(base + ".")
    return relative == pattern


def violations(module: str, imported: Iterable[str]) -> list[str]:
    """Why each import of `module` breaks the table; empty when all are allowed."""
    layer = layer_of(module)
    if layer not in LAYERS:
        return [f"{module}: layer {layer!r} is not in the table of tests/test_layers.py"]
    allowed = LAYERS[layer]
    out = []
    for target in sorted(imported):
        top = target.split(".")[0]
        if top == "pillarbox":
            relative = target.partition(".")[2]
            if not any(_matches(p, relative) for p in allowed.pillarbox):
                out.append(f"{module}: layer {layer!r} may not import {target}")
        elif top in STDLIB:
            if top in allowed.stdlib_denied:
                out.append(f"{module}: layer {layer!r} must not use {top} (it stays pure)")
        elif not ({top, "*"} & allowed.third_party):
            out.append(f"{module}: layer {layer!r} may not import third-party {top!r}")
    return out


@pytest.mark.parametrize(("module", "path"), modules(), ids=lambda v: str(v))
def test_module_respects_layers(module: str, path: Path) -> None:
    """Every import of every module, including imports inside functions, is one the
    table allows its layer; a module in a layer the table does not know fails."""
    bad = violations(module, imports(path, module))
    assert not bad, "\n".join(bad)


def test_table_names_only_known_layers() -> None:
    """Every pillarbox pattern names a layer of the table (a typo would allow nothing
    silently), and no third-party entry is really a standard-library module."""
    for layer, allowed in LAYERS.items():
        for pattern in allowed.pillarbox - ANYTHING:
            assert pattern.split(".")[0] in LAYERS, f"{layer}: unknown layer in {pattern!r}"
        assert not (allowed.third_party & STDLIB), f"{layer}: stdlib listed as third-party"


def test_unknown_layer_is_refused() -> None:
    """A package the table does not know fails, even with only stdlib imports."""
    bad = violations("pillarbox.newthing.x", ["os"])
    assert bad and "newthing" in bad[0]


@pytest.mark.parametrize(
    ("module", "target"),
    [
        ("pillarbox.store.sqlite", "argon2"),
        ("pillarbox.store.sqlite", "requests"),
        ("pillarbox.store.sqlite", "pillarbox.services.auth"),
        ("pillarbox.proto.smtp.server", "asyncio"),
        ("pillarbox.proto.smtp.server", "pillarbox.rules"),
        ("pillarbox.model.flags", "pillarbox.rules"),
        ("pillarbox.services.mailbox", "pillarbox.store.sqlite"),
        ("pillarbox.services.mailbox", "pillarbox.server.imap"),
        ("pillarbox.server.smtp", "pillarbox.store.api"),
        ("pillarbox.server.smtp", "pillarbox.queue.worker"),
        ("pillarbox.server.smtp", "starlette"),
        ("pillarbox.web.routes", "pillarbox.app"),
        ("pillarbox.web.reading", "pillarbox.store.api"),
        ("pillarbox.web.listing", "pillarbox.server.imap"),
        ("pillarbox.web.routes", "uvicorn"),
        ("pillarbox.config", "pillarbox.cli"),
        ("pillarbox", "pillarbox.model"),
    ],
)
def test_forbidden_imports_are_refused(module: str, target: str) -> None:
    """The table refuses what the design forbids: a third-party package the layer does
    not list, I/O in a pure layer, a concrete backend in services, the store in a
    front-end, one front-end in another, and `app`/`cli` anywhere."""
    assert violations(module, [target])


@pytest.mark.parametrize(
    ("module", "target"),
    [
        ("pillarbox.store.postgres", "psycopg"),
        ("pillarbox.store.sqlite", "pillarbox.rules.addresses"),
        ("pillarbox.services.mailbox", "pillarbox.rules"),
        ("pillarbox.server.imap.session", "pillarbox.rules.mailboxes"),
        ("pillarbox.rules.addresses", "pillarbox.model"),
        ("pillarbox.mailauth.spf", "dns.resolver"),
        ("pillarbox.app", "pillarbox.store.sqlite"),
    ],
)
def test_planned_imports_are_allowed(module: str, target: str) -> None:
    """The layers being added in parallel (rules, mailauth, the PostgreSQL driver) fit
    the table already."""
    assert violations(module, [target]) == []


def test_import_walk_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    """The walk resolves relative imports and `from pkg import module`, and sees an
    import inside a function body, where a late import would otherwise hide."""
    root = tmp_path / "pillarbox"
    (root / "store").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "store" / "__init__.py").write_text("")
    (root / "store" / "api.py").write_text("")
    source = root / "store" / "sqlite.py"
    source.write_text("from . import api\ndef f():\n    import argon2\n")
    found = imports(source, "pillarbox.store.sqlite", root)
    assert found == {"pillarbox.store.api", "argon2"}
    assert violations("pillarbox.store.sqlite", found) == [
        "pillarbox.store.sqlite: layer 'store' may not import third-party 'argon2'"
    ]


def test_proto_never_imports_io() -> None:
    """The protocol cores stay sans-I/O: no asyncio, socket, ssl, selectors, threading."""
    forbidden = {"asyncio", "socket", "ssl", "selectors", "threading"}
    for module, path in modules():
        if module.startswith("pillarbox.proto"):
            tops = {t.split(".")[0] for t in imports(path, module)}
            assert not (tops & forbidden), f"{module} imports {tops & forbidden}"
