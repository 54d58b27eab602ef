"""A reader of the webmail's event stream for tests: /events read in a thread, block by
block (the SSE fields of the WHATWG HTML "server-sent events" format)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from tests.web.client import WebClient


@dataclass
class Event:
    id: str | None
    kind: str  # the SSE event type ("" for a block without one)
    data: str


class Stream:
    """An open /events stream read in a thread, block by block (SSE fields)."""

    def __init__(self, client: WebClient, url: str, headers: dict[str, str]) -> None:
        self._context = client.http.stream("GET", url, headers=headers, timeout=httpx.Timeout(30))
        self.reply = self._context.__enter__()
        self.blocks: list[Event] = []
        self.ended = threading.Event()
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            for line in self.reply.iter_lines():
                if line == "":
                    if fields:
                        block = Event(
                            fields.get("id"), fields.get("event", ""), fields.get("data", "")
                        )
                        with self._changed:
                            self.blocks.append(block)
                            self._changed.notify_all()
                    fields = {}
                elif not line.startswith(":") and ":" in line:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()
            with self._changed:
                self._changed.notify_all()

    def next_block(self, timeout: float = 1.0) -> Event:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self.blocks:
                left = deadline - time.monotonic()
                assert left > 0 and not self.ended.is_set(), "nothing on the stream in time"
                self._changed.wait(left)
            return self.blocks.pop(0)

    def close(self) -> None:
        self._context.__exit__(None, None, None)
