"""`pillarbox serve` starts the webmail on the `http` listener and says where it is.

Pins: the start-up lines name the http listener (in the "NAME listening on HOST:PORT"
form `ServeProcess` reads, followed by the URL to open); that address answers
with the sign-in page while the mail listeners run in the same process; SIGTERM stops
the whole server (the webmail does not hold the process open or take the signal).
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.serve import ServeProcess


def test_serve_prints_and_serves_the_webmail(tmp_path: Path) -> None:
    config = tmp_path / "pillarbox.toml"
    empty = "\n".join(
        f'{name} = ""' for name in ("submission", "submissions", "imaps", "pop3", "pop3s")
    )
    config.write_text(
        f'[server]\nhostname = "mail.example.test"\ndata_dir = "{tmp_path / "data"}"\n'
        f'log_level = "error"\n[listen]\nsmtp = "127.0.0.1:0"\nimap = "127.0.0.1:0"\n'
        f'http = "127.0.0.1:0"\n{empty}\n'
    )
    server = ServeProcess(config, ("smtp", "imap", "http"))
    try:
        port = server.ports["http"]
        reply = httpx.get(f"http://127.0.0.1:{port}/signin", timeout=30)
        assert reply.status_code == 200
        assert 'name="password"' in reply.text
    finally:
        server.stop()
    assert server.proc.returncode == 0
