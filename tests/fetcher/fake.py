"""A scripted server for the failures a real Pillarbox never makes (no UIDL, PREAUTH,
pipelined plaintext, oversized literals, a connection dropped mid-message)."""

from __future__ import annotations

import socket
import threading

CAPABILITY = b"* CAPABILITY IMAP4rev1 STARTTLS\r\n{tag} OK done\r\n"


class FakeServer:
    """A server on 127.0.0.1 that plays one script per connection, in turn: b"<" reads a
    line, anything else is sent, with {tag} replaced by the first word of the last line
    read."""

    def __init__(self, script: list[bytes], *more: list[bytes]) -> None:
        """`script` for the first connection, `more` for the ones after it."""
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.scripts = [script, *more]
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for script in self.scripts:
            self._one(script)

    def _one(self, script: list[bytes]) -> None:
        conn, _ = self.listener.accept()
        with conn, conn.makefile("rb") as reader:
            conn.settimeout(10)
            try:
                for reply in script:
                    if reply.startswith(b"<"):
                        self.received.append(reader.readline())
                        continue
                    tag = self.received[-1].split(b" ", 1)[0] if self.received else b""
                    conn.sendall(reply.replace(b"{tag}", tag))
            except OSError:
                pass  # the client hung up first: that is what some tests want

    def close(self) -> None:
        self.thread.join(timeout=10)
        self.listener.close()
