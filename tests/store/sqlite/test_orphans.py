"""Blob files without a row: collected when the server opens the store, left alone when
the CLI does (it runs beside a live server whose messages being received have files but
no rows yet)."""

from __future__ import annotations

from pathlib import Path

from pillarbox.store.sqlite import SqliteStore


async def _orphan(data_dir: Path) -> int:
    store = SqliteStore(data_dir)
    await store.open()
    try:
        writer = store.new_blob()
        await writer.write(b"Subject: in flight\r\n\r\nbody\r\n")
        handle = await writer.finish()  # durable, but no row refers to it yet
        return handle.blob_id
    finally:
        await store.close()


async def test_cli_open_keeps_files_without_rows(tmp_path: Path) -> None:
    blob_id = await _orphan(tmp_path)
    cli_side = SqliteStore(tmp_path, collect_orphans=False)
    await cli_side.open()
    try:
        assert await cli_side.read_blob(blob_id) == b"Subject: in flight\r\n\r\nbody\r\n"
    finally:
        await cli_side.close()
    server_side = SqliteStore(tmp_path)
    await server_side.open()
    try:
        blob_files = [
            p for d in (tmp_path / "blobs").iterdir() if d.name != "tmp" for p in d.iterdir()
        ]
        assert blob_files == []
    finally:
        await server_side.close()
