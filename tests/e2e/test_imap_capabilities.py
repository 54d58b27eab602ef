"""Every capability the IMAP server advertises has an end-to-end test over a real socket.

AUDIT maps each advertised capability to the test that shows a client what it promises.
test_advertised_capabilities_are_audited fails when the server starts advertising one
without an entry (or an entry names a test that no longer exists), so the list and the
tests cannot drift apart. The tests below cover the capabilities that had none: what a
client sees, written from each RFC's text and examples.
"""

from __future__ import annotations

import base64
import datetime
import importlib
import re
import ssl
from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_conformance_defects import connect, logged_in
from tests.e2e.test_imap_raw import RawImap, status

MSG = b"From: a@example.test\r\nSubject: hi\r\n\r\nhello\r\n"

# capability -> "module::test" (modules under tests/e2e/)
__all__ = ["connect"]  # the fixture, reused

AUDIT: dict[str, str] = {
    "IMAP4rev1": "test_imap_basic::test_login_select_append_fetch",
    "IMAP4rev2": "test_imap_session::test_enable_rev2_and_misc",
    "LITERAL+": "test_imap_unauthenticate::test_literal_plus_by_default",
    "LITERAL-": "test_imap_capabilities::test_literal_minus_limits_every_command",
    "SASL-IR": "test_imap_capabilities::test_sasl_ir",
    "ID": "test_imap_capabilities::test_id_before_and_after_login",
    "ENABLE": "test_imap_capabilities::test_enable_rules",
    "STARTTLS": "test_imap_capabilities::test_commands_pipelined_behind_starttls_are_dropped",
    "AUTH=PLAIN": "test_imap_session::test_authenticate_plain",
    "LOGINDISABLED": "test_imap_session::test_plaintext_refused_before_tls",
    "IDLE": "test_imap_session::test_idle_pushes_changes",
    "NAMESPACE": "test_imap_session::test_enable_rev2_and_misc",
    "UNSELECT": "test_imap_capabilities::test_unselect_keeps_deleted_messages",
    "UIDPLUS": "test_imap_capabilities::test_uidplus_codes_carry_the_real_uids",
    "MOVE": "test_imap_capabilities::test_move_sends_copyuid_before_the_expunges",
    "CHILDREN": "test_imap_rfc_list::test_list_pattern_matches_inbox_in_any_case",
    "LIST-EXTENDED": (
        "test_imap_conformance_defects::test_childinfo_only_for_a_parent_not_itself_selected"
    ),
    "LIST-STATUS": "test_imap_session::test_enable_rev2_and_misc",
    "SPECIAL-USE": "test_imap_session::test_enable_rev2_and_misc",
    "CREATE-SPECIAL-USE": "test_imap_create_special_use::test_create_with_a_special_use",
    "ESEARCH": "test_imap_fetch::test_esearch_and_searchres",
    "SEARCHRES": "test_imap_fetch::test_esearch_and_searchres",
    "WITHIN": "test_imap_capabilities::test_within_older_and_younger",
    "MULTIAPPEND": "test_imap_capabilities::test_multiappend_is_all_or_nothing",
    "CATENATE": "test_imap_catenate::test_forward_built_from_urls_and_text",
    "BINARY": "test_imap_capabilities::test_binary_append_and_unknown_encoding",
    "UTF8=ACCEPT": "test_imap_capabilities::test_utf8_accept",
    "STATUS=SIZE": "test_imap_session::test_enable_rev2_and_misc",
    "QUOTA": "test_imap_quota::test_capabilities",
    "QUOTA=RES-STORAGE": "test_imap_quota::test_capabilities",
    "QUOTA=RES-MESSAGE": "test_imap_quota::test_capabilities",
    "COMPRESS=DEFLATE": "test_imap_compress::test_capability_and_commands_compressed",
    "SORT": "test_imap_sort::test_sort_keys",
    "SORT=DISPLAY": "test_imap_sort::test_sort_keys",
    "ESORT": "test_imap_sort::test_esort",
    "CONTEXT=SEARCH": "test_imap_context::test_delivery_gives_addto_after_exists",
    "CONTEXT=SORT": "test_imap_context::test_sort_context_positions",
    "THREAD=ORDEREDSUBJECT": "test_imap_thread::test_ordered_subject",
    "THREAD=REFERENCES": "test_imap_thread::test_references",
    "UNAUTHENTICATE": "test_imap_unauthenticate::test_unauthenticate_then_another_user",
    "PREVIEW": "test_imap_preview::test_preview",
    "OBJECTID": "test_imap_objectid::test_mailboxid_create_select_status_rename",
    "SAVEDATE": "test_imap_savedate::test_fetch_and_search_savedate",
    "REPLACE": "test_imap_replace::test_replace_in_the_selected_mailbox",
    "CONDSTORE": "test_imap_condstore::test_capability_and_enable",
    "QRESYNC": "test_imap_qresync::test_select_qresync_reports_what_changed",
    "NOTIFY": (
        "test_imap_notify::test_delivery_into_an_unselected_mailbox_is_reported_within_one_second"
    ),
    "APPENDLIMIT": "test_imap_capabilities::test_appendlimit_in_status",
}


def append(c: RawImap, box: str = "INBOX", data: bytes = MSG, flags: str = "") -> list[bytes]:
    return c.cmd(f'APPEND "{box}" {flags}{{{len(data)}+}}\r\n'.encode() + data)


def caps(line: bytes) -> set[str]:
    """The capability names of a CAPABILITY response or an OK [CAPABILITY ...] line."""
    m = re.search(rb"CAPABILITY ([^\]]*)", line)
    assert m is not None, line
    return {
        name.split("=", 1)[0] if name.startswith("APPENDLIMIT=") else name
        for name in m.group(1).decode().split()
    }


def uid_set(text: bytes) -> list[int]:
    """A uid-set (RFC 4315 §4) as the UIDs it names, in the order given."""
    out: list[int] = []
    for part in text.split(b","):
        low, _, high = part.partition(b":")
        out += range(int(low), int(high or low) + 1)
    return out


def untagged(lines: list[bytes], prefix: bytes) -> list[bytes]:
    return [line for line in lines if line.startswith(prefix)]


# ---------------------------------------------------------------------- the audit


def test_advertised_capabilities_are_audited(
    server_factory: Callable[..., RunningServer],
) -> None:
    """Before login (with and without TLS-only login) and after it, each capability the
    server lists has an entry in AUDIT naming a test that exists."""
    for config in ({}, {"allow_plaintext_loopback": False}):
        srv = server_factory(auth=config)
        c = RawImap(srv.port("imap"))
        try:
            seen = caps(c.greeting) | caps(c.cmd("CAPABILITY")[0])
            if not config:
                assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
                after = caps(c.cmd("CAPABILITY")[0])
                assert not after & {"AUTH=PLAIN", "STARTTLS", "LOGINDISABLED"}
                seen |= after
        finally:
            c.close()
        unaudited = seen - set(AUDIT)
        assert not unaudited, f"advertised without an end-to-end test: {sorted(unaudited)}"
    for cap, where in AUDIT.items():
        module_name, test_name = where.split("::")
        module = importlib.import_module(f"tests.e2e.{module_name}")
        assert callable(getattr(module, test_name, None)), (cap, where)


def test_commands_pipelined_behind_starttls_are_dropped(server: RunningServer) -> None:
    """Plaintext sent in the same packet as STARTTLS was written before TLS began and may
    be an attacker's (the STARTTLS command-injection flaw, CERT VU#555316); the server
    must not run it inside the TLS session nor answer it, and the session then works
    as usual under TLS (RFC 9051 §6.2.1: after STARTTLS the client asks CAPABILITY anew)."""
    c = RawImap(server.port("imap"))
    try:
        c.send(b"a STARTTLS\r\nb LOGIN alice@example.test x\r\nc CAPABILITY\r\n")
        assert c.line().startswith(b"a OK")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c.sock = ctx.wrap_socket(c.sock)
        lines = c.cmd("CAPABILITY")
        assert lines[0].startswith(b"* CAPABILITY ") and status(lines).startswith(b"OK"), lines
        assert "STARTTLS" not in caps(lines[0]) and len(lines) == 2, lines
        assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
    finally:
        c.close()


# ---------------------------------------------------------------------- ID, SASL-IR, ENABLE


def _id_pairs(line: bytes) -> dict[bytes, bytes]:
    assert line.startswith(b"* ID ("), line
    items = re.findall(rb'"((?:[^"\\]|\\.)*)"|NIL', line[len(b"* ID ") :])
    assert len(items) % 2 == 0, line
    return dict(zip(items[::2], items[1::2], strict=True))


def test_id_before_and_after_login(connect: Callable[[], RawImap]) -> None:
    """RFC 2971 §3.1: ID is valid in any state, the client's list may be NIL or
    field/value pairs (a value may be NIL); the server answers one untagged ID with its
    own pairs (§3.3: at most 30, field names up to 30 octets, values up to 1024), then
    OK. An odd list is not the grammar's `"(" string SP nstring *(...) ")"`: BAD."""
    c = connect()
    lines = c.cmd('ID ("name" "sodr" "version" "19.34" "vendor" NIL)')
    assert status(lines).startswith(b"OK") and len(untagged(lines, b"* ID ")) == 1
    pairs = _id_pairs(lines[0])
    assert pairs[b"name"] == b"Pillarbox"
    assert len(pairs) <= 30
    assert all(len(k) <= 30 and len(v) <= 1024 for k, v in pairs.items())
    assert status(c.cmd('ID ("name")')).startswith(b"BAD")
    assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
    lines = c.cmd("ID NIL")
    assert status(lines).startswith(b"OK") and _id_pairs(lines[0]) == pairs


def test_sasl_ir(connect: Callable[[], RawImap]) -> None:
    """RFC 4959 §3: the initial response goes on the AUTHENTICATE line, so no "+ "
    continuation is sent for it; "=" is a zero-length response (a PLAIN message needs two
    NULs, so it fails, and the session stays unauthenticated); wrong credentials in the
    initial response are NO [AUTHENTICATIONFAILED]; base64 that does not decode is BAD
    (RFC 9051 §6.2.2); the right ones log in and the OK carries the new CAPABILITY list."""
    c = connect()
    for ir, reply in (("=", (b"NO", b"BAD")), ("!!!!", (b"BAD",))):
        lines = c.cmd(f"AUTHENTICATE PLAIN {ir}")
        assert len(lines) == 1 and status(lines).startswith(reply), (ir, lines)
    wrong = base64.b64encode(b"\0alice@example.test\0wrong").decode()
    lines = c.cmd(f"AUTHENTICATE PLAIN {wrong}")
    assert lines == [lines[-1]] and status(lines).startswith(b"NO [AUTHENTICATIONFAILED]")
    assert status(c.cmd("SELECT INBOX")).startswith(b"BAD")  # still not authenticated
    good = base64.b64encode(
        b"alice@example.test\0alice@example.test\0" + PASSWORD.encode()
    ).decode()  # RFC 4616 §2: an authzid equal to the authcid is allowed
    lines = c.cmd(f"AUTHENTICATE PLAIN {good}")
    assert len(lines) == 1 and status(lines).startswith(b"OK [CAPABILITY "), lines
    assert "AUTH=PLAIN" not in caps(lines[-1]) and "IDLE" in caps(lines[-1])
    assert status(c.cmd("SELECT INBOX")).startswith(b"OK")


def test_enable_rules(connect: Callable[[], RawImap]) -> None:
    """RFC 5161 §3.1: ENABLE is valid only in the authenticated state: BAD before login,
    and BAD from this server while a mailbox is selected (clients must not send it then;
    the RFC lets a server check that or not). Names the server does not know are ignored,
    and the untagged ENABLED lists only what was enabled."""
    c = connect()
    assert status(c.cmd("ENABLE CONDSTORE")).startswith(b"BAD")
    assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
    lines = c.cmd("ENABLE X-NOT-A-THING CONDSTORE")
    assert status(lines).startswith(b"OK")
    assert untagged(lines, b"* ENABLED") == [b"* ENABLED CONDSTORE"]
    lines = c.cmd("ENABLE X-NOT-A-THING")
    assert status(lines).startswith(b"OK")
    assert all(line.strip() == b"* ENABLED" for line in untagged(lines, b"* ENABLED"))
    lines = c.cmd("SELECT INBOX")
    assert any(b"HIGHESTMODSEQ" in line for line in lines)  # CONDSTORE really is on
    assert status(c.cmd("ENABLE UTF8=ACCEPT")).startswith(b"BAD")


# ---------------------------------------------------------------------- UNSELECT, MOVE, UIDPLUS


def test_unselect_keeps_deleted_messages(connect: Callable[[], RawImap]) -> None:
    """RFC 3691 §2: UNSELECT leaves the selected state without expunging: no EXPUNGE
    to anyone, the \\Deleted message is still there; without a selected mailbox it is
    BAD. CLOSE, by contrast, expunges (RFC 9051 §6.4.1)."""
    c = logged_in(connect)
    other = logged_in(connect)
    append(c)
    append(c)
    assert status(c.cmd("SELECT INBOX")).startswith(b"OK")
    assert status(other.cmd("SELECT INBOX")).startswith(b"OK")
    c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    lines = c.cmd("UNSELECT")
    assert status(lines).startswith(b"OK") and not untagged(lines, b"* 1 EXPUNGE"), lines
    assert not any(b"EXPUNGE" in line for line in other.cmd("NOOP"))
    assert status(c.cmd("FETCH 1 (FLAGS)")).startswith(b"BAD")  # no mailbox selected
    assert status(c.cmd("UNSELECT")).startswith(b"BAD")
    assert b"MESSAGES 2" in c.cmd("STATUS INBOX (MESSAGES)")[0]
    lines = c.cmd("EXAMINE INBOX")
    assert b"* 2 EXISTS" in lines
    lines = c.cmd("FETCH 1 (FLAGS)")
    assert b"\\Deleted" in lines[0], lines
    assert status(c.cmd("UNSELECT")).startswith(b"OK")
    assert status(c.cmd("SELECT INBOX")).startswith(b"OK")
    assert status(c.cmd("CLOSE")).startswith(b"OK")
    assert b"MESSAGES 1" in c.cmd("STATUS INBOX (MESSAGES)")[0]
    assert b"* 1 EXPUNGE" in other.cmd("NOOP")


def _uidvalidity(c: RawImap, box: str) -> int:
    line = c.cmd(f"STATUS {box} (UIDVALIDITY)")[0]
    m = re.search(rb"UIDVALIDITY (\d+)", line)
    assert m is not None, line
    return int(m.group(1))


def test_move_sends_copyuid_before_the_expunges(connect: Callable[[], RawImap]) -> None:
    """RFC 6851 §4.3 (with UIDPLUS): the COPYUID goes in an untagged OK before the
    EXPUNGE responses, since the tagged OK comes after the source messages are gone;
    §3.3: the flags move along, other sessions see the expunges; a missing target is
    NO [TRYCREATE] and moves nothing."""
    c = logged_in(connect)
    other = logged_in(connect)
    for _ in range(3):
        append(c)
    assert status(c.cmd("CREATE Dest")).startswith(b"OK")
    append(c, "Dest")  # Dest's next UID is 2
    c.cmd("SELECT INBOX")
    other.cmd("SELECT INBOX")
    c.cmd("STORE 2 +FLAGS.SILENT (\\Flagged $Work)")
    lines = c.cmd("UID MOVE 2:3 Dest")
    assert status(lines).startswith(b"OK"), lines
    dest_validity = _uidvalidity(c, "Dest")
    m = re.match(rb"\* OK \[COPYUID (\d+) ([\d:,]+) ([\d:,]+)\]", lines[0])
    assert m is not None, lines
    assert int(m.group(1)) == dest_validity
    assert (uid_set(m.group(2)), uid_set(m.group(3))) == ([2, 3], [2, 3])
    assert lines[1:-1] == [b"* 3 EXPUNGE", b"* 2 EXPUNGE"], lines
    assert [line for line in other.cmd("NOOP") if b"EXPUNGE" in line] == [
        b"* 3 EXPUNGE",
        b"* 2 EXPUNGE",
    ]
    lines = c.cmd("MOVE 1 Nowhere")
    assert status(lines).startswith(b"NO [TRYCREATE]") and not untagged(lines, b"* 1 EXPUNGE")
    c.cmd("EXAMINE Dest")
    lines = c.cmd("UID FETCH 2:3 (FLAGS)")
    assert any(b"UID 2" in line and b"\\Flagged" in line and b"$Work" in line for line in lines)
    assert b"MESSAGES 1" in c.cmd("STATUS INBOX (MESSAGES)")[0]


def test_uidplus_codes_carry_the_real_uids(connect: Callable[[], RawImap]) -> None:
    """RFC 4315 §3: APPENDUID names the target's UIDVALIDITY and the new UID; COPYUID
    pairs source and target UIDs in order (§3's example "COPYUID 38505 304,319:320
    3956:3958"); UID FETCH of those UIDs finds the copies; UID EXPUNGE (§2.1) removes only
    the \\Deleted messages among the UIDs given."""
    c = logged_in(connect)
    uids = []
    for _ in range(4):
        lines = append(c)
        m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", lines[-1])
        assert m is not None and int(m.group(1)) == _uidvalidity(c, "INBOX"), lines
        uids.append(int(m.group(2)))
    assert uids == sorted(uids) and len(set(uids)) == 4
    assert status(c.cmd("CREATE Copies")).startswith(b"OK")
    c.cmd("SELECT INBOX")
    lines = c.cmd(f"UID COPY {uids[0]},{uids[2]}:{uids[3]} Copies")
    m = re.search(rb"\[COPYUID (\d+) ([\d:,]+) ([\d:,]+)\]", lines[-1])
    assert m is not None, lines
    assert int(m.group(1)) == _uidvalidity(c, "Copies")
    assert uid_set(m.group(2)) == [uids[0], uids[2], uids[3]]
    assert uid_set(m.group(3)) == [1, 2, 3]  # in the same order as the source UIDs
    c.cmd(f"UID STORE {uids[1]}:{uids[2]} +FLAGS.SILENT (\\Deleted)")
    lines = c.cmd(f"UID EXPUNGE {uids[2]}")
    assert untagged(lines, b"* ") == [b"* 3 EXPUNGE"], lines
    assert b"MESSAGES 3" in c.cmd("STATUS INBOX (MESSAGES)")[0]


# ---------------------------------------------------------------------- MULTIAPPEND, LITERAL-


def test_multiappend_is_all_or_nothing(server: RunningServer) -> None:
    """RFC 3502 §6.3.11: a MULTIAPPEND is atomic, so if any message cannot be appended,
    none is. A message limit the third message would pass, and a second literal over
    APPENDLIMIT, both leave the mailbox as it was and tell an observing session nothing;
    a MULTIAPPEND that fits adds all in one APPENDUID set (RFC 4315 §3) and one EXISTS."""
    accounts: Any = server.services.accounts
    server.call(lambda: accounts.set_quota("alice@example.test", None, 3))
    c = RawImap(server.port("imap"))
    watcher = RawImap(server.port("imap"))
    try:
        assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
        assert status(watcher.login("alice@example.test", PASSWORD)).startswith(b"OK")
        assert status(append(c)).startswith(b"OK")
        watcher.cmd("SELECT INBOX")
        three = b" ".join(b"{%d+}\r\n%s" % (len(MSG), MSG) for _ in range(3))
        lines = c.cmd(b"APPEND INBOX " + three)
        assert status(lines).startswith(b"NO [OVERQUOTA]"), lines
        assert b"MESSAGES 1" in c.cmd("STATUS INBOX (MESSAGES)")[0]
        limit = server.config.imap.max_literal_size
        c.n += 1  # the second literal synchronizing: refused before its octets are sent
        c.send(b"t%d APPEND INBOX {%d+}\r\n%s {%d}\r\n" % (c.n, len(MSG), MSG, limit + 1))
        lines = c.until(b"t%d" % c.n)
        assert status(lines).startswith((b"BAD [TOOBIG]", b"NO [TOOBIG]")), lines
        assert b"MESSAGES 1" in c.cmd("STATUS INBOX (MESSAGES)")[0]
        lines = watcher.cmd("NOOP")
        assert not any(b"EXISTS" in line for line in lines), lines
        two = b"(\\Seen) {%d+}\r\n%s {%d+}\r\n%s" % (len(MSG), MSG, len(MSG), MSG)
        lines = c.cmd(b"APPEND INBOX " + two)
        m = re.search(rb"OK \[APPENDUID \d+ ([\d:,]+)\]", lines[-1])
        assert m is not None, lines
        new = uid_set(m.group(1))  # the refused attempt may have used up UIDs (ascending only)
        assert len(new) == 2 and 1 < new[0] < new[1], lines
        assert untagged(watcher.cmd("NOOP"), b"* 3 EXISTS") == [b"* 3 EXISTS"]
        lines = watcher.cmd("FETCH 2:3 (UID FLAGS)")
        assert b"UID %d " % new[0] in lines[0] and b"\\Seen" in lines[0], lines
        assert b"UID %d " % new[1] in lines[1] and b"\\Seen" not in lines[1], lines
    finally:
        c.close()
        watcher.close()


def test_literal_minus_limits_every_command(
    server_factory: Callable[..., RunningServer],
) -> None:
    """RFC 7888 §4 (LITERAL-): a non-synchronizing literal over 4096 octets is refused
    with BAD [TOOBIG] whatever the command (here LOGIN and SEARCH, not only APPEND), and
    the session reads the next command correctly; 4096 octets and synchronizing
    literals are fine."""
    srv = server_factory(imap={"literal_minus": True})
    c = RawImap(srv.port("imap"))
    try:
        big = b"x" * 4097
        lines = c.cmd(b"LOGIN {18+}\r\nalice@example.test {4097+}\r\n" + big)
        assert status(lines).startswith(b"BAD [TOOBIG]"), lines
        assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
        c.cmd("SELECT INBOX")
        lines = c.cmd(b"SEARCH SUBJECT {4097+}\r\n" + big)
        assert status(lines).startswith(b"BAD [TOOBIG]"), lines
        lines = c.cmd(b"SEARCH SUBJECT {4096+}\r\n" + big[:4096])
        assert status(lines).startswith(b"OK") and lines[0] == b"* SEARCH", lines
        c.n += 1
        c.send(b"t%d SEARCH SUBJECT {4097}\r\n" % c.n)
        assert c.line().startswith(b"+ ")
        c.send(big + b"\r\n")
        assert c.until(b"t%d" % c.n)[-1].startswith(b"t%d OK" % c.n)
    finally:
        c.close()


def test_appendlimit_in_status(server_factory: Callable[..., RunningServer]) -> None:
    """RFC 7889 §3: APPENDLIMIT=n in CAPABILITY is the limit for every mailbox, and the
    STATUS (and LIST-STATUS) APPENDLIMIT item reports it per mailbox; a synchronizing
    APPEND above it is refused with NO [TOOBIG] before any octet is sent (§2)."""
    srv = server_factory(imap={"max_literal_size": 5000})
    c = RawImap(srv.port("imap"))
    try:
        assert "APPENDLIMIT" in caps(c.greeting) and b"APPENDLIMIT=5000" in c.greeting
        assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
        assert c.cmd("STATUS INBOX (APPENDLIMIT)")[0] == b'* STATUS "INBOX" (APPENDLIMIT 5000)'
        lines = c.cmd('LIST "" Sent RETURN (STATUS (APPENDLIMIT))')
        assert b'* STATUS "Sent" (APPENDLIMIT 5000)' in lines, lines
        c.n += 1
        c.send(b"t%d APPEND INBOX {5001}\r\n" % c.n)
        assert c.line().startswith(b"t%d NO [TOOBIG]" % c.n)
        assert status(append(c, data=MSG + b"y" * (5000 - len(MSG)))).startswith(b"OK")
    finally:
        c.close()


# ---------------------------------------------------------------------- BINARY, UTF8=ACCEPT

NUL_MESSAGE = (
    b"From: a@example.test\r\n"
    b"Subject: raw\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: binary\r\n"
    b"\r\n"
    b"\x00\x01\x02 bin \xff\x00\r\n"
)
ODD_CTE = (
    b"From: a@example.test\r\n"
    b"Subject: odd\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Transfer-Encoding: x-uuencode-ish\r\n"
    b"\r\n"
    b"begin 644 f\r\n"
)


def test_binary_append_and_unknown_encoding(connect: Callable[[], RawImap]) -> None:
    """RFC 3516 §4.4: APPEND takes a literal8 ("~{n}"), synchronizing too, holding NUL;
    a plain literal cannot carry NUL (RFC 9051 §9 CHAR8): BAD. §4.2: BINARY[] of such a
    message comes back as a literal8 with the exact octets, BINARY.SIZE counts them;
    §4.3: a part whose Content-Transfer-Encoding the server cannot decode is
    NO [UNKNOWN-CTE] for BINARY and BINARY.SIZE alike."""
    c = logged_in(connect)
    assert status(append(c, data=b"Subject: x\r\n\r\na\x00b\r\n")).startswith(b"BAD")
    c.n += 1
    c.send(b"t%d APPEND INBOX ~{%d}\r\n" % (c.n, len(NUL_MESSAGE)))
    assert c.line().startswith(b"+ ")
    c.send(NUL_MESSAGE + b"\r\n")
    assert c.until(b"t%d" % c.n)[-1].startswith(b"t%d OK [APPENDUID" % c.n)
    assert status(append(c, data=ODD_CTE)).startswith(b"OK")
    c.cmd("SELECT INBOX")
    lines = c.cmd("FETCH 1 (BINARY.PEEK[])")
    assert lines[0] == b"* 1 FETCH (BINARY[] ~{%d}\r\n%s)" % (len(NUL_MESSAGE), NUL_MESSAGE)
    body = NUL_MESSAGE.partition(b"\r\n\r\n")[2]
    lines = c.cmd("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])")
    assert lines[0] == b"* 1 FETCH (BINARY[1] ~{%d}\r\n%s BINARY.SIZE[1] %d)" % (
        len(body),
        body,
        len(body),
    ), lines
    for item in ("BINARY.PEEK[1]", "BINARY.SIZE[1]"):
        lines = c.cmd(f"FETCH 2 ({item})")
        assert status(lines).startswith(b"NO [UNKNOWN-CTE]"), (item, lines)
    lines = c.cmd("FETCH 2 (BODY.PEEK[1])")  # BODY[] still gives the encoded octets
    assert lines[0] == b"* 2 FETCH (BODY[1] {13}\r\nbegin 644 f\r\n)", lines
    assert b"\\Seen" not in c.cmd("FETCH 1:2 (FLAGS)")[0]


UTF8_MESSAGE = "From: Jörg <jörg@example.test>\r\nSubject: Grüße\r\n\r\nhallo\r\n".encode()


def test_utf8_accept(connect: Callable[[], RawImap]) -> None:
    """RFC 6855 §3: until ENABLE UTF8=ACCEPT a quoted string is 7-bit (RFC 3501 §9) and
    mailbox names go as modified UTF-7; after it, UTF-8 quoted names are accepted and
    LIST shows them as UTF-8. §4: APPEND's UTF8 data extension takes the message as a
    literal8 and stores it as sent; FETCH returns the UTF-8 header fields as they are."""
    c = logged_in(connect)
    name = "Ärger".encode()
    assert status(c.cmd(b'CREATE "' + name + b'"')).startswith(b"BAD")
    lines = c.cmd("ENABLE UTF8=ACCEPT")
    assert untagged(lines, b"* ENABLED") == [b"* ENABLED UTF8=ACCEPT"]
    assert status(c.cmd(b'CREATE "' + name + b'"')).startswith(b"OK")
    listing = c.cmd('LIST "" "*"')
    assert b'* LIST (\\HasNoChildren) "/" "' + name + b'"' in listing, listing
    assert not any(b"&AMQ-rger" in line for line in listing)
    lines = c.cmd(b'APPEND "' + name + b'" UTF8 (~{%d+}\r\n%s)' % (len(UTF8_MESSAGE), UTF8_MESSAGE))
    assert status(lines).startswith(b"OK [APPENDUID"), lines
    c.cmd(b'EXAMINE "' + name + b'"')
    lines = c.cmd("FETCH 1 (BODY.PEEK[] BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"BODY[] {%d}\r\n%s" % (len(UTF8_MESSAGE), UTF8_MESSAGE) in lines[0], lines
    assert "Subject: Grüße\r\n\r\n".encode() in lines[0]
    lines = c.cmd(b'SEARCH SUBJECT "' + "grüße".encode() + b'"')
    assert lines[0] == b"* SEARCH 1", lines
    other = logged_in(connect)  # a session without UTF8=ACCEPT sees modified UTF-7
    assert b'"&AMQ-rger"' in b"\n".join(other.cmd('LIST "" "*"'))


def test_within_older_and_younger(connect: Callable[[], RawImap]) -> None:
    """RFC 5032 §3: OLDER n, internal date more than n seconds before now; YOUNGER n,
    within the last n seconds; 0 is not an interval (nz-number): BAD."""
    c = logged_in(connect)
    now = datetime.datetime.now(datetime.UTC)
    for age in (datetime.timedelta(days=2), datetime.timedelta(hours=1), datetime.timedelta()):
        when = (now - age).strftime("%d-%b-%Y %H:%M:%S +0000")
        lines = c.cmd(b'APPEND INBOX "%s" {%d+}\r\n%s' % (when.encode(), len(MSG), MSG))
        assert status(lines).startswith(b"OK"), lines
    assert status(c.cmd("SELECT INBOX")).startswith(b"OK")
    assert untagged(c.cmd("SEARCH OLDER 7200"), b"* SEARCH") == [b"* SEARCH 1"]
    assert untagged(c.cmd("SEARCH YOUNGER 7200"), b"* SEARCH") == [b"* SEARCH 2 3"]
    assert untagged(c.cmd("UID SEARCH YOUNGER 600"), b"* SEARCH") == [b"* SEARCH 3"]
    assert untagged(c.cmd("SEARCH NOT OLDER 100000 OLDER 60"), b"* SEARCH") == [b"* SEARCH 2"]
    assert status(c.cmd("SEARCH OLDER 0")).startswith(b"BAD")
    assert status(c.cmd("SEARCH YOUNGER -5")).startswith(b"BAD")


def test_a_save_search_refused_for_its_charset_empties_the_saved_result(
    connect: Callable[[], RawImap],
) -> None:
    """RFC 5182 §2.1 / RFC 9051 §6.4.4.1: a SEARCH RETURN (SAVE) that fails, here with
    NO [BADCHARSET], leaves "$" empty rather than holding the previous result."""
    c = logged_in(connect)
    for _ in range(3):
        append(c)
    assert status(c.cmd("SELECT INBOX")).startswith(b"OK")
    assert status(c.cmd("SEARCH RETURN (SAVE) ALL")).startswith(b"OK")
    assert untagged(c.cmd("SEARCH $"), b"* SEARCH") == [b"* SEARCH 1 2 3"]
    assert b"[BADCHARSET" in status(c.cmd("SEARCH RETURN (SAVE) CHARSET BOGUS ALL"))
    assert untagged(c.cmd("SEARCH $"), b"* SEARCH") == [b"* SEARCH"]
    assert status(c.cmd("SEARCH RETURN (SAVE) ALL")).startswith(b"OK")
    assert b"[BADCHARSET" in status(c.cmd("SORT RETURN (SAVE) (SUBJECT) BOGUS ALL"))
    assert untagged(c.cmd("SEARCH $"), b"* SEARCH") == [b"* SEARCH"]


def test_charset_names_once_utf8_accept_is_enabled(connect: Callable[[], RawImap]) -> None:
    """RFC 6855 §3 (and erratum 4029): after ENABLE UTF8=ACCEPT a SEARCH names no
    CHARSET, and SORT/THREAD name UTF-8; anything else is BAD."""
    c = logged_in(connect)
    append(c)
    assert status(c.cmd("ENABLE UTF8=ACCEPT")).startswith(b"OK")
    assert status(c.cmd("SELECT INBOX")).startswith(b"OK")
    assert untagged(c.cmd("SEARCH ALL"), b"* SEARCH") == [b"* SEARCH 1"]
    assert status(c.cmd("SEARCH CHARSET US-ASCII ALL")).startswith(b"BAD")
    assert status(c.cmd("SEARCH CHARSET UTF-8 ALL")).startswith(b"BAD")
    assert status(c.cmd("SORT (SUBJECT) US-ASCII ALL")).startswith(b"BAD")
    assert untagged(c.cmd("SORT (SUBJECT) UTF-8 ALL"), b"* SORT") == [b"* SORT 1"]
    assert status(c.cmd("THREAD REFERENCES US-ASCII ALL")).startswith(b"BAD")
    assert status(c.cmd("THREAD REFERENCES UTF-8 ALL")).startswith(b"OK")
