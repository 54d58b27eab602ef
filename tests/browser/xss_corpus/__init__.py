"""The XSS corpus: hostile messages, one `.eml` file per case, made live for a test run.

Each file is a message as it would arrive, written for people to read: leading ``#``
lines name the attack class and where it comes from, then the header and body. The
loader fills in what every case shares, so a file holds only its attack:

- ``{{JS}}``: the script every payload tries to run. It sets a global in its own
  window (``window.pwned``), opens a dialog, asks the beacon for a URL, and then sets
  the global on ``parent`` and ``top`` (last: across origins that throws). No double
  quotes, ``<``, ``>`` or ``&`` in it, so it fits a double-quoted attribute.
- ``{{BEACON}}``: ``http://127.0.0.1:PORT/b/CASE``, a URL of the test's own HTTP
  server; any request to it proves that something of the message was loaded.
- ``{{HOST}}``: ``127.0.0.1:PORT`` alone; ``{{CASE}}``: the case's name;
  ``{{NUL}}``: a NUL character.
- ``{{base64:`` ... ``}}``, ``{{qp:`` ... ``}}``: the lines between, placeholders
  filled, encoded in base64 / quoted-printable (for the transfer-encoding cases, whose
  payload could not be read otherwise).

Missing From, To, Date, Message-ID and MIME-Version headers are added, and every case
gets ``X-Corpus-Case: NAME`` so a test can find it. Payloads also name hosts outside
this machine (``attacker.example``): the browser fixture shows that none is asked for.
"""

from __future__ import annotations

import base64
import email
import email.policy
import quopri
import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from pillarbox.message.charsets import decode_bytes

HERE = Path(__file__).parent
OUTSIDE_HOST = "attacker.example"

_JS = (
    "window.pwned='{case}';alert('{case}');fetch('{beacon}/fetch');"
    "parent.pwned='{case}';top.pwned='{case}'"
)
_DIRECTIVE = re.compile(r"\{\{(base64|qp):\n(.*?)\n\}\}", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    about: str  # the file's leading comment: attack class and source
    raw: bytes  # the message as sent over SMTP (CRLF line ends)

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def html(self) -> str | None:
        """The (last) text/html part, decoded as the webmail decodes it, or None."""
        found = None
        for part in self.message.walk():
            if part.get_content_type() == "text/html" and not part.is_attachment():
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes)
                found = decode_bytes(payload, part.get_content_charset())
        return found

    def attachment_names(self) -> list[str]:
        return [
            str(part.get_filename())
            for part in self.message.walk()
            if part.get_filename() is not None
        ]


def _fill(text: str, name: str, beacon_port: int) -> str:
    host = f"127.0.0.1:{beacon_port}"
    beacon = f"http://{host}/b/{name}"
    js = _JS.format(case=name, beacon=beacon)
    for key, value in (
        ("{{JS}}", js),
        ("{{BEACON}}", beacon),
        ("{{HOST}}", host),
        ("{{CASE}}", name),
        ("{{NUL}}", "\x00"),
    ):
        text = text.replace(key, value)

    def encode(match: re.Match[str]) -> str:
        kind, inner = match.group(1), match.group(2)
        if kind == "base64":
            return base64.encodebytes(inner.encode()).decode().rstrip()
        return quopri.encodestring(inner.encode()).decode().rstrip()

    return _DIRECTIVE.sub(encode, text)


def _complete(header: str, name: str) -> str:
    have = {line.split(":", 1)[0].lower() for line in header.split("\n") if ":" in line}
    added = [f"X-Corpus-Case: {name}"]
    defaults = {
        "from": "Mallory <mallory@attacker.example>",
        "to": "bob@example.test",
        "subject": f"XSS case {name}",
        "date": "Sun, 06 Dec 2026 12:00:00 +0000",
        "message-id": f"<{name}@attacker.example>",
        "mime-version": "1.0",
    }
    added += [f"{key.title()}: {value}" for key, value in defaults.items() if key not in have]
    return "\n".join([*added, header])


def load(name: str, beacon_port: int) -> Case:
    lines = (HERE / f"{name}.eml").read_text(encoding="utf-8").split("\n")
    start = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    about = [line.lstrip("# ").rstrip() for line in lines[:start]]
    text = "\n".join(lines[start:])
    header, _, body = text.partition("\n\n")
    text = _complete(header, name) + "\n\n" + body
    text = _fill(text, name, beacon_port).replace("\r\n", "\n").replace("\n", "\r\n")
    return Case(name, " ".join(about), text.encode("utf-8"))


def names() -> list[str]:
    return sorted(path.stem for path in HERE.glob("*.eml"))


def load_all(beacon_port: int) -> list[Case]:
    return [load(name, beacon_port) for name in names()]
