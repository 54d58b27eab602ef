"""Logging set-up and secret redaction.

Connection ids travel in the messages themselves ("smtp-12 ..."), so one grep follows a
session. `RedactingFilter` masks credentials that a protocol trace could carry (AUTH
initial responses, LOGIN/PASS arguments) before any handler sees them.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import re
import sys

from pillarbox.rules.printable import escape_controls

# Protocol commands that carry secrets. Upper-case verbs anywhere (the form clients send
# and traces show); any case only where the message starts with the command, optionally
# after a plain tag, because prose in our own log lines ("login", "pass", "dkim=pass
# header.d=...") must stay readable rather than have its next words masked.
_SECRET_PATTERNS = (
    re.compile(r"\b(AUTH(?:ENTICATE)?\s+\S+\s+)\S+"),
    re.compile(r"\b(PASS\s+)\S.*"),
    re.compile(r"\b(LOGIN\s+\S+\s+)\S+"),
    re.compile(r"(?i)^((?:\w{1,20}\s+)?auth(?:enticate)?\s+\S+\s+)\S+"),
    re.compile(r"(?i)^(pass\s+)\S.*"),
    re.compile(r"(?i)^((?:\w{1,20}\s+)?login\s+\S+\s+)\S+"),
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
        # Client-supplied text in a message cannot forge lines or reach the terminal.
        record.msg = escape_controls(redact(str(record.msg)))
        return True


class _Enqueue(logging.handlers.QueueHandler):
    """Hands records to the writer thread as they are.

    The stock `prepare` formats the message in the caller; here formatting, redaction and
    the write to stderr all happen on the writer thread, so a log line costs the event
    loop one queue put instead of a formatted write (which releases the GIL and, on a busy
    server, waits to get it back).
    """

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


_listener: logging.handlers.QueueListener | None = None


@atexit.register
def _stop() -> None:
    """Write out what is queued (a normal exit, or `setup` called again)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


def setup(level: str = "info", process: str = "") -> None:
    """Log to stderr from a writer thread. `process` names this process in every line
    when several share the log (`master`, `w1`, ... with `[server] workers` > 1)."""
    global _listener
    handler = logging.StreamHandler(sys.stderr)
    tag = f"{process} " if process else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    _stop()
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = logging.handlers.QueueListener(records, handler)
    _listener.start()
    root = logging.getLogger()
    root.handlers[:] = [_Enqueue(records)]
    root.setLevel(level.upper())
