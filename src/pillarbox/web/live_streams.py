"""The open live-update streams (`web.live`), kept by session so that they end with it."""

from __future__ import annotations

from pillarbox.services.context import Subscription


class Streams:
    """The open event streams, by session id, so sign-out and shutdown can end them."""

    def __init__(self) -> None:
        self._by_session: dict[str, set[Subscription]] = {}

    def add(self, session_id: str, sub: Subscription) -> None:
        self._by_session.setdefault(session_id, set()).add(sub)

    def count(self, session_id: str) -> int:
        return len(self._by_session.get(session_id, ()))

    def discard(self, session_id: str, sub: Subscription) -> None:
        subs = self._by_session.get(session_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_session[session_id]

    async def end_streams(self, session_id: str) -> None:
        for sub in list(self._by_session.pop(session_id, ())):
            await sub.aclose()

    async def close_all(self) -> None:
        for session_id in list(self._by_session):
            await self.end_streams(session_id)
