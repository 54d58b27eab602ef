"""Logging set-up and secret redaction.

Connection ids travel in the messages themselves ("smtp-12 ..."), so one grep follows a
session. `RedactingFilter` masks credentials that a protocol trace could carry (AUTH
initial responses, LOGIN/PASS arguments) before any handler sees them.
"""

from __future__ import annotations

import logging
import re
import sys

_SECRET_PATTERNS = (
    re.compile(r"(?i)\b(AUTH(?:ENTICATE)?\s+\S+\s+)\S+"),
    re.compile(r"(?i)\b(PASS\s+)\S.*"),
    re.compile(r"(?i)(\bLOGIN\s+\S+\s+)\S+"),
    re.compile(r"(?i)(password[\"']?\s*[:=]\s*)\S+"),
)


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1[redacted]", text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = redact(str(record.msg))
        return True


def setup(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
