"""Benchmark `pillarbox.message.parse`: small-message rate and large-message throughput.

Prints one JSON object: messages per second for a ~5 KB multipart/alternative message,
and MB/s (and peak extra memory) for a ~20 MB message with a base64 attachment. Each
figure is the best of several timed rounds, so it measures the parser, not the noise;
the load average is printed because a busy machine still skews the small-message rate.

Run: .venv/bin/python bench/message_parse.py
"""

from __future__ import annotations

import base64
import json
import os
import platform
import time
import tracemalloc

from pillarbox.message import parse


def small_message() -> bytes:
    text = ("Hello, this is a line of ordinary text in a small message. " * 40).encode()
    html = b"<html><body><p>" + text + b"</p></body></html>"
    body = (
        b"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + b"\r\n"
        b"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html + b"\r\n--alt--\r\n"
    )
    header = (
        b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
        b"From: Fred Foobar <foobar@example.com>\r\n"
        b'To: mooch@example.org, "Jane Doe" <jane@example.org>\r\n'
        b"Subject: =?utf-8?q?afternoon_meeting_=E2=98=83?=\r\n"
        b"Message-ID: <B27397-0100000@example.com>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/alternative; boundary=alt\r\n\r\n"
    )
    return header + body


def large_message(size: int) -> bytes:
    raw = os.urandom(size * 3 // 4)
    attachment = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    return (
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: big\r\n"
        b"Content-Type: multipart/mixed; boundary=xyz\r\n\r\n"
        b"--xyz\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
        b"--xyz\r\nContent-Type: application/octet-stream; name=big.bin\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + attachment + b"--xyz--\r\n"
    )


def best_of(rounds: int, func: object, *args: object) -> float:
    assert callable(func)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        func(*args)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    small = small_message()
    count = 2000

    def many() -> None:
        for _ in range(count):
            parse(small)

    small_seconds = best_of(5, many)
    big = large_message(20_000_000)
    big_seconds = best_of(5, parse, big)
    tracemalloc.start()
    parse(big)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "python": platform.python_version(),
                "load_average_1min": round(os.getloadavg()[0], 1),
                "small_message_bytes": len(small),
                "small_msgs_per_s": round(count / small_seconds),
                "large_message_bytes": len(big),
                "large_mb_per_s": round(len(big) / 1e6 / big_seconds, 1),
                "large_parse_ms": round(big_seconds * 1000, 1),
                "large_peak_extra_bytes": peak,
            }
        )
    )


if __name__ == "__main__":
    main()
