"""A browser stand-in for the webmail tests: httpx with cookies, and the form tokens
read out of the served pages the way a browser would submit them."""

from __future__ import annotations

import imaplib
import re
from types import TracebackType

import httpx

from tests.e2e.conftest import PASSWORD, RunningServer

_FIELD = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')


def hidden_fields(page: str) -> dict[str, str]:
    return dict(_FIELD.findall(page))


class WebClient:
    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.base = f"http://127.0.0.1:{server.port('http')}"
        self.http = httpx.Client(base_url=self.base, timeout=30, follow_redirects=False)

    def __enter__(self) -> WebClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.http.close()

    def get(self, url: str, **kwargs: object) -> httpx.Response:
        return self.http.get(url, **kwargs)  # type: ignore[arg-type]

    def post(self, url: str, data: dict[str, str], **kwargs: object) -> httpx.Response:
        return self.http.post(url, data=data, **kwargs)  # type: ignore[arg-type]

    def sign_in(self, address: str, password: str = PASSWORD) -> httpx.Response:
        form = self.get("/signin")
        assert form.status_code == 200
        token = hidden_fields(form.text)["signin_token"]
        data = {"signin_token": token, "address": address, "password": password, "next": "/"}
        return self.post("/signin", data)

    def csrf(self, url: str = "/compose") -> str:
        page = self.get(url)
        assert page.status_code == 200, page.status_code
        return hidden_fields(page.text)["csrf"]


def imap_login(server: RunningServer, user: str) -> imaplib.IMAP4:
    imap = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
    imap.login(user, PASSWORD)
    return imap


def inbox_count(server: RunningServer, user: str) -> int:
    """How many messages `user`'s INBOX holds, as an IMAP client sees it (SELECT)."""
    imap = imap_login(server, user)
    try:
        typ, data = imap.select("INBOX")
        assert typ == "OK"
        return int(data[0])
    finally:
        imap.logout()


def append(server: RunningServer, user: str, message: bytes, mailbox: str = "INBOX") -> int:
    """APPEND over IMAP (a real client adding mail); returns the new UID (UIDPLUS)."""
    imap = imap_login(server, user)
    try:
        typ, data = imap.append(mailbox, "", None, message)
        assert typ == "OK", data
        code = data[0].decode() if isinstance(data[0], bytes) else str(data[0])
        match = re.search(r"APPENDUID \d+ (\d+)", code)
        assert match, code
        return int(match.group(1))
    finally:
        imap.logout()
