"""One large FETCH section streamed from its blob (issue 16 item 1).

`services.fetching` decides which sections stream (plain byte ranges of the stored
message, and BINARY[] of base64 or quoted-printable parts, when they are `STREAM_MIN` or
more); this module reads them: the blob is opened before the front-end sends anything of
the answer, read in `STREAM_CHUNK` pieces off the event loop (`Store.open_blob`), each
piece asked for only when the front-end wrote the previous one, and a transfer encoding
is undone piece by piece (`message.transfer`), so a connection holds about one piece of
the message whatever its size and however slowly its client reads. A decoded section's
length must be on the wire before its first byte (RFC 9051 §4.3 literal, RFC 3516
literal8), so `measure` decodes it once beforehand, discarding the output.

Must not: know IMAP syntax, hold more than a piece of a section in memory, or leave a
blob open (`SectionStream.close`, which the front-end calls however the stream ends).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from pillarbox.message.transfer import Base64Decoder, QuotedPrintableDecoder
from pillarbox.services.mailbox import call_store
from pillarbox.store.api import BlobReader, Store

STREAM_CHUNK = 256 * 1024  # bytes read from the blob per step of a stream
STREAMED_ENCODINGS = frozenset({"base64", "quoted-printable"})


class _Decoder(Protocol):
    def feed(self, data: bytes) -> bytes: ...
    def end(self) -> bytes: ...


def _decoder(cte: str) -> _Decoder:
    return Base64Decoder() if cte == "base64" else QuotedPrintableDecoder()


@dataclass(frozen=True, slots=True)
class LargeSection:
    """A section too large to hold in memory: `source` bytes of blob `blob_id` from
    `start`, with transfer encoding `cte` undone ("" for none) and the first `skip`
    decoded bytes dropped, make its `length` bytes. `nul`: whether they hold a NUL
    octet, when already known."""

    store: Store
    blob_id: int
    start: int
    source: int
    length: int
    cte: str = ""
    skip: int = 0
    nul: bool | None = None

    def __len__(self) -> int:
        return self.length

    async def has_nul(self) -> bool:
        """The section holds a NUL octet (a pass over it unless known): BINARY[] sends
        a literal8 only then (RFC 3516 §4.3: data without NUL SHOULD go as <string>)."""
        if self.nul is not None:
            return self.nul
        stream = await self.open()
        try:
            async for chunk in stream.chunks():
                if b"\x00" in chunk:
                    return True
            return False
        finally:
            await stream.close()

    async def open(self) -> SectionStream:
        """Open the blob before anything of the answer is sent, so a message expunged
        since its row was read fails cleanly (NoSuchMailbox), not halfway through."""
        reader = await call_store(
            self.store.open_blob(self.blob_id, self.start), not_found="Message is gone"
        )
        return SectionStream(reader, self)


class SectionStream:
    """An open `LargeSection`: its bytes in pieces of about `STREAM_CHUNK`, each read
    when the previous one was taken; `close` releases the blob."""

    def __init__(self, reader: BlobReader, section: LargeSection) -> None:
        self._reader = reader
        self._section = section

    async def _raw(self) -> AsyncIterator[bytes]:
        left = self._section.source
        while left > 0:
            data = await self._reader.read(min(STREAM_CHUNK, left))
            if not data:
                # The blob is shorter than its recorded offsets say: the literal's length
                # is already on the wire, so the connection cannot go on.
                raise ConnectionAbortedError("message file shorter than recorded")
            left -= len(data)
            yield data

    async def chunks(self) -> AsyncIterator[bytes]:
        section = self._section
        if not section.cte:
            async for data in self._raw():
                yield data
            return
        decoder = _decoder(section.cte)
        skip, left = section.skip, section.length
        async for data in self._raw():
            out = decoder.feed(data)
            if skip:
                out, skip = out[skip:], max(0, skip - len(out))
            if out and left:
                out = out[:left]
                left -= len(out)
                yield out
            if not left:
                return
        out = decoder.end()[skip:][:left]
        left -= len(out)
        if out:
            yield out
        if left:
            raise ConnectionAbortedError("decoded section shorter than measured")

    async def close(self) -> None:
        await self._reader.close()


async def measure(
    store: Store, blob_id: int, start: int, source: int, cte: str
) -> tuple[int, bool]:
    """Length of `source` bytes of the blob from `start` once `cte` is undone, and
    whether they hold a NUL: one pass, piece by piece, nothing kept."""
    stream = await LargeSection(store, blob_id, start, source, source).open()
    decoder = _decoder(cte)
    length, nul = 0, False
    try:
        async for data in stream.chunks():
            out = decoder.feed(data)
            length += len(out)
            nul = nul or b"\x00" in out
    finally:
        await stream.close()
    out = decoder.end()
    return length + len(out), nul or b"\x00" in out
