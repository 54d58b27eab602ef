"""`pillarbox migrate`: the configured store's schema to this release, before/after shown."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import asyncpg

from pillarbox.store.postgres import schema as pg_schema
from pillarbox.store.sqlite import schema as sqlite_schema
from tests import pg
from tests.test_cli import run

HEAD = '[server]\ndata_dir = "var"\nhostname = "mail.example.test"\n'


def _postgres_config(tmp_path: Path, dsn: str) -> Path:
    path = tmp_path / "pillarbox.toml"
    path.write_text(HEAD + 'store = "postgres"\nnode_id = "cli"\n\n[store]\n' + f'dsn = "{dsn}"\n')
    return path


def test_migrate_sqlite_prints_versions(tmp_path: Path) -> None:
    config = tmp_path / "pillarbox.toml"
    config.write_text(HEAD)
    newest = sqlite_schema.migrations()[-1][0]
    result = run(config, "migrate")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"sqlite schema version 0 -> {newest} (migrated)\n"
    assert (tmp_path / "var" / "pillarbox.db").is_file()
    result = run(config, "migrate")
    assert result.stdout == f"sqlite schema version {newest} -> {newest} (up to date)\n"


def test_migrate_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    config = tmp_path / "pillarbox.toml"
    config.write_text(HEAD)
    assert run(config, "migrate").returncode == 0
    newer = sqlite_schema.migrations()[-1][0] + 1
    db = sqlite3.connect(tmp_path / "var" / "pillarbox.db")
    with db:
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (newer,))
    db.close()
    result = run(config, "migrate")
    assert result.returncode == 1 and result.stdout == ""
    assert f"the database schema is version {newer}, newer than this Pillarbox" in result.stderr


def test_migrate_postgres_prints_versions(tmp_path: Path) -> None:
    config = _postgres_config(tmp_path, pg.empty_database(str(tmp_path)))
    newest = pg_schema.newest()
    result = run(config, "migrate")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"postgres schema version 0 -> {newest} (migrated)\n"
    result = run(config, "migrate")
    assert result.stdout == f"postgres schema version {newest} -> {newest} (up to date)\n"


def test_migrate_postgres_twice_at_once(tmp_path: Path) -> None:
    """Two runs on one empty database (two nodes' operators, or a node starting): the
    advisory lock serialises them and both succeed."""
    config = _postgres_config(tmp_path, pg.empty_database(str(tmp_path)))
    command = [sys.executable, "-m", "pillarbox", "--config", str(config), "migrate"]
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    newest = pg_schema.newest()
    assert sorted(out for out, _ in outputs) == [
        f"postgres schema version 0 -> {newest} (migrated)\n",
        f"postgres schema version {newest} -> {newest} (up to date)\n",
    ]


def test_migrate_postgres_refuses_a_newer_schema(tmp_path: Path) -> None:
    dsn = pg.database(str(tmp_path))  # migrated already
    newer = pg_schema.newest() + 1

    async def bump() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", newer)
        finally:
            await conn.close()

    asyncio.run(bump())
    result = run(_postgres_config(tmp_path, dsn), "migrate")
    assert result.returncode == 1 and result.stdout == ""
    assert f"the database schema is version {newer}, newer than this Pillarbox" in result.stderr
    assert "upgrade every node to the same release" in result.stderr


def test_migrate_postgres_unreachable_is_one_line(tmp_path: Path) -> None:
    # Port 1 on loopback: nothing listens there, the connection is refused.
    config = _postgres_config(tmp_path, "postgresql://postgres@127.0.0.1:1/none")
    result = run(config, "migrate")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(
        "pillarbox: store error: StoreUnavailable: database unavailable"
    )
    assert len(result.stderr.splitlines()) == 1
