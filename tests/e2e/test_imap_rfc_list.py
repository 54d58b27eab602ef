"""LIST conformance details found in review (RFC 9051 §5.1, §6.3.9), over a raw socket."""

from __future__ import annotations

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap, status


def test_list_pattern_matches_inbox_in_any_case(server: RunningServer) -> None:
    """RFC 9051 §5.1: INBOX is case-insensitive, so a pattern that starts with "Inbox"
    followed by a wildcard lists INBOX and its children, as "INBOX*" does."""
    r = RawImap(server.port("imap"))
    try:
        assert status(r.login("alice@example.test", PASSWORD)).startswith(b"OK")
        assert status(r.cmd("CREATE inbox/sub")).startswith(b"OK")
        for pattern in ("Inbox*", "inbox*", "INBOX*"):
            lines = r.cmd(f'LIST "" {pattern}')
            assert lines[:-1] == [
                b'* LIST (\\HasChildren) "/" "INBOX"',
                b'* LIST (\\HasNoChildren) "/" "INBOX/sub"',
            ], (pattern, lines)
        lines = r.cmd('LIST "" inBox/%')
        assert lines[:-1] == [b'* LIST (\\HasNoChildren) "/" "INBOX/sub"']
        lines = r.cmd('LIST "inbox/" %')
        assert lines[:-1] == [b'* LIST (\\HasNoChildren) "/" "INBOX/sub"']
    finally:
        r.close()


def test_list_pattern_with_many_wildcards_answers_at_once(server: RunningServer) -> None:
    """A LIST pattern is the client's: "*a*a*…*ab" against a mailbox "aaa…a" made the
    old backtracking regex take time exponential in the wildcards (the fuzzer found it;
    ten wildcards would hold the server's event loop for many minutes). Matching is now
    linear, so the answer comes at once and is right by RFC 9051 §6.3.9. (The old code
    runs into the 10 s socket timeout here.)"""
    r = RawImap(server.port("imap"), timeout=10)
    try:
        assert status(r.login("alice@example.test", PASSWORD)).startswith(b"OK")
        assert status(r.cmd("CREATE " + "a" * 60)).startswith(b"OK")
        lines = r.cmd('LIST "" ' + "*a" * 12 + "b")
        assert lines[:-1] == [] and status(lines).startswith(b"OK"), lines
        lines = r.cmd('LIST "" ' + "*a" * 12 + "%")
        assert lines[:-1] == [b'* LIST (\\HasNoChildren) "/" "' + b"a" * 60 + b'"'], lines
    finally:
        r.close()
