"""`pillarbox serve` as an operator runs it: what the log says when it stops."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pillarbox.config import ListenConfig
from tests.e2e.serve import ServeProcess


def test_an_orderly_shutdown_is_logged(tmp_path: Path) -> None:
    """SIGTERM: the log says the server is shutting down and why, then that it stopped
    (issue 16 item 7: a shutdown logged nothing)."""
    off = "\n".join(f'{f.name} = ""' for f in dataclasses.fields(ListenConfig) if f.name != "smtp")
    config = tmp_path / "pillarbox.toml"
    config.write_text(
        "[server]\n"
        f'data_dir = "{tmp_path / "data"}"\n'
        'log_level = "info"\n'
        "[listen]\n"
        'smtp = "127.0.0.1:0"\n'
        f"{off}\n"
        "[dns]\n"
        'nameservers = ["127.0.0.1:9"]\n'
    )
    log = tmp_path / "serve.log"
    server = ServeProcess(config, ("smtp",), log)
    server.stop()
    assert server.proc.returncode == 0
    lines = log.read_text().splitlines()
    assert any("shutting down (SIGTERM)" in line for line in lines), lines
    assert "stopped" in lines[-1], lines
