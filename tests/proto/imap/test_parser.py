"""Every command form parses to the dataclass the server expects, and bad ones get BAD.

Pins the grammar of RFC 9051 §9 and the extensions (RFC 3502, 3516, 4466, 4731, 4959,
5161, 5182, 5258, 5819, 6154, 6855, 7162, 2971): one wire command → one event.
"""

from __future__ import annotations

import datetime

import pytest

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.connection import State
from pillarbox.proto.imap.parser import ParseError, parse_command, parse_sequence_set

from .driver import Reply, parse_one

NA = State.NOT_AUTHENTICATED
AU = State.AUTHENTICATED
SE = State.SELECTED


def ss(text: str) -> c.SequenceSet:
    return parse_sequence_set(text.encode())


def R(a: int | None, b: int | None = -1) -> c.SeqRange:
    return c.SeqRange(a, a if b == -1 else b)


FA = c.FetchAttribute

VALID: list[tuple[bytes, State, c.Command]] = [
    (b"a CAPABILITY", NA, c.Capability("a")),
    (b"a1 noop", SE, c.Noop("a1")),
    (b"x LOGOUT", AU, c.Logout("x")),
    (b"t STARTTLS", NA, c.StartTls("t")),
    (b"a AUTHENTICATE plain", NA, c.Authenticate("a", "PLAIN")),
    (b"a AUTHENTICATE PLAIN =", NA, c.Authenticate("a", "PLAIN", b"")),
    (
        b"a AUTHENTICATE PLAIN AGJvYgBwdw==",
        NA,
        c.Authenticate("a", "PLAIN", b"\x00bob\x00pw"),
    ),
    (b"a LOGIN bob secret", NA, c.Login("a", "bob", "secret")),
    (b'a LOGIN "b\\"ob" "p w\\\\"', NA, c.Login("a", 'b"ob', "p w\\")),
    (b"a LOGIN {3}\r\nbob {2}\r\npw", NA, c.Login("a", "bob", "pw")),
    (b"a LOGIN {3+}\r\nbob pw", NA, c.Login("a", "bob", "pw")),
    (b"a ENABLE CONDSTORE utf8=accept", AU, c.Enable("a", ("CONDSTORE", "UTF8=ACCEPT"))),
    (b"a SELECT INBOX", AU, c.Select("a", "INBOX")),
    (b'a SELECT "Sent Items"', AU, c.Select("a", "Sent Items")),
    (
        b"a SELECT INBOX (CONDSTORE)",
        AU,
        c.Select("a", "INBOX", (("CONDSTORE", None),), condstore=True),
    ),
    (
        b"a EXAMINE INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
        AU,
        c.Examine(
            "a",
            "INBOX",
            (("QRESYNC", ("67890007", "20050715194045000", "41,43:211,214:541")),),
            qresync=c.QResync(67890007, 20050715194045000, ss("41,43:211,214:541")),
        ),
    ),
    (
        b"a SELECT INBOX (QRESYNC (1 2 1:* (1:3 4:6)) X-FOO 5)",
        SE,
        c.Select(
            "a",
            "INBOX",
            (("QRESYNC", ("1", "2", "1:*", ("1:3", "4:6"))), ("X-FOO", "5")),
            qresync=c.QResync(1, 2, ss("1:*"), (ss("1:3"), ss("4:6"))),
        ),
    ),
    (b"a CREATE foo/bar", AU, c.Create("a", "foo/bar")),
    (
        b"a CREATE MySpecial (USE (\\Drafts \\Sent))",
        AU,
        c.Create("a", "MySpecial", ("\\Drafts", "\\Sent"), (("USE", ("\\Drafts", "\\Sent")),)),
    ),
    (b"a DELETE foo", AU, c.Delete("a", "foo")),
    (b"a RENAME foo {3}\r\nbar", AU, c.Rename("a", "foo", "bar")),
    (b"a SUBSCRIBE foo", AU, c.Subscribe("a", "foo")),
    (b"a UNSUBSCRIBE foo", SE, c.Unsubscribe("a", "foo")),
    (b'a LIST "" *', AU, c.List("a", "", ("*",))),
    (b"a LIST ~/Mail/ %", AU, c.List("a", "~/Mail/", ("%",))),
    (b'a LIST "" "INBOX"', AU, c.List("a", "", ("INBOX",))),
    (
        b'a LIST (SUBSCRIBED REMOTE RECURSIVEMATCH special-use) "" (INBOX "Sent" %/x*)',
        AU,
        c.List(
            "a",
            "",
            ("INBOX", "Sent", "%/x*"),
            ("SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"),
            extended=True,
        ),
    ),
    (
        b'a LIST "" % RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (MESSAGES UIDNEXT))',
        AU,
        c.List(
            "a",
            "",
            ("%",),
            (),
            ("SUBSCRIBED", "CHILDREN", "SPECIAL-USE"),
            ("MESSAGES", "UIDNEXT"),
            extended=True,
        ),
    ),
    (b'a LIST () "" % RETURN ()', AU, c.List("a", "", ("%",), extended=True)),
    (b'a LSUB "" *', AU, c.Lsub("a", "", "*")),
    (b"a NAMESPACE", AU, c.Namespace("a")),
    (
        b"a STATUS blurdybloop (UIDNEXT MESSAGES size highestmodseq)",
        AU,
        c.Status("a", "blurdybloop", ("UIDNEXT", "MESSAGES", "SIZE", "HIGHESTMODSEQ")),
    ),
    (
        b"a APPEND saved-messages (\\Seen) {5}\r\nhello",
        AU,
        c.Append("a", "saved-messages", (c.AppendMessage(("\\Seen",), None, b"hello"),)),
    ),
    (
        b'a APPEND INBOX " 7-Feb-1994 21:52:25 -0800" {2}\r\nhi',
        AU,
        c.Append(
            "a",
            "INBOX",
            (
                c.AppendMessage(
                    (),
                    datetime.datetime(
                        1994,
                        2,
                        7,
                        21,
                        52,
                        25,
                        tzinfo=datetime.timezone(datetime.timedelta(hours=-8)),
                    ),
                    b"hi",
                ),
            ),
        ),
    ),
    (
        b"a APPEND INBOX () ~{3}\r\na\x00b (\\Flagged $Junk) {1+}\r\nz UTF8 (~{2}\r\n\xc3\xa9)",
        SE,
        c.Append(
            "a",
            "INBOX",
            (
                c.AppendMessage((), None, b"a\x00b", binary=True),
                c.AppendMessage(("\\Flagged", "$Junk"), None, b"z"),
                c.AppendMessage((), None, b"\xc3\xa9", binary=True, utf8=True),
            ),
        ),
    ),
    # RFC 8508 §3.3 example, and "*" / UID / the UTF8 form
    (
        b"a REPLACE 4 Drafts (\\Seen \\Draft) {5}\r\nhello",
        SE,
        c.Replace("a", False, 4, "Drafts", c.AppendMessage(("\\Seen", "\\Draft"), None, b"hello")),
    ),
    (
        b"a UID REPLACE * INBOX {1+}\r\nx",
        SE,
        c.Replace("a", True, None, "INBOX", c.AppendMessage((), None, b"x")),
    ),
    (
        b"a UID replace 25 Sent UTF8 (~{2}\r\n\xc3\xa9)",
        SE,
        c.Replace(
            "a", True, 25, "Sent", c.AppendMessage((), None, b"\xc3\xa9", binary=True, utf8=True)
        ),
    ),
    (b"a IDLE", AU, c.Idle("a")),
    (b"a CHECK", SE, c.Check("a")),
    (b"a CLOSE", SE, c.Close("a")),
    (b"a UNSELECT", SE, c.Unselect("a")),
    (b"a EXPUNGE", SE, c.Expunge("a")),
    (b"a UID EXPUNGE 3000:3002", SE, c.UidExpunge("a", ss("3000:3002"))),
    (b"a ID NIL", NA, c.Id("a", None)),
    (
        b'a ID ("name" "sodr" "version" NIL)',
        SE,
        c.Id("a", (("name", "sodr"), ("version", None))),
    ),
    (b"a ID ()", AU, c.Id("a", ())),
    (b"a COPY 2:4 MEETING", SE, c.Copy("a", False, ss("2:4"), "MEETING")),
    (b"a UID COPY 1,3 Trash", SE, c.Copy("a", True, ss("1,3"), "Trash")),
    (b"a MOVE $ Trash", SE, c.Move("a", False, ss("$"), "Trash")),
    (b"a uid move 1:* {5}\r\nTrash", SE, c.Move("a", True, ss("1:*"), "Trash")),
    # STORE
    (
        b"a STORE 2:4 +FLAGS (\\Deleted)",
        SE,
        c.Store("a", False, ss("2:4"), "add", False, ("\\Deleted",)),
    ),
    (
        b"a UID STORE 1 -FLAGS.SILENT \\Seen $Label1",
        SE,
        c.Store("a", True, ss("1"), "remove", True, ("\\Seen", "$Label1")),
    ),
    (
        b"a STORE * (UNCHANGEDSINCE 12121230045) FLAGS ()",
        SE,
        c.Store("a", False, ss("*"), "replace", False, (), 12121230045),
    ),
    # FETCH
    (
        b"a FETCH 1 ALL",
        SE,
        c.Fetch(
            "a",
            False,
            ss("1"),
            (FA("FLAGS"), FA("INTERNALDATE"), FA("RFC822.SIZE"), FA("ENVELOPE")),
        ),
    ),
    (
        b"a FETCH 1 (FAST)",
        SE,
        c.Fetch("a", False, ss("1"), (FA("FLAGS"), FA("INTERNALDATE"), FA("RFC822.SIZE"))),
    ),
    (
        b"a FETCH 1 fast",
        SE,
        c.Fetch("a", False, ss("1"), (FA("FLAGS"), FA("INTERNALDATE"), FA("RFC822.SIZE"))),
    ),
    (
        b"a FETCH 1 FULL",
        SE,
        c.Fetch(
            "a",
            False,
            ss("1"),
            (FA("FLAGS"), FA("INTERNALDATE"), FA("RFC822.SIZE"), FA("ENVELOPE"), FA("BODY")),
        ),
    ),
    (
        b"a FETCH 2:4 (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE UID MODSEQ"
        b" RFC822 RFC822.HEADER RFC822.TEXT)",
        SE,
        c.Fetch(
            "a",
            False,
            ss("2:4"),
            tuple(
                FA(n)
                for n in (
                    "FLAGS",
                    "INTERNALDATE",
                    "RFC822.SIZE",
                    "ENVELOPE",
                    "BODY",
                    "BODYSTRUCTURE",
                    "UID",
                    "MODSEQ",
                    "RFC822",
                    "RFC822.HEADER",
                    "RFC822.TEXT",
                )
            ),
        ),
    ),
    (b"a FETCH 1 BODY[]", SE, c.Fetch("a", False, ss("1"), (c.FetchBody(),))),
    (
        b"a FETCH 1 (BODY.PEEK[] BODY[HEADER] BODY[TEXT]<0.2048>)",
        SE,
        c.Fetch(
            "a",
            False,
            ss("1"),
            (
                c.FetchBody(peek=True),
                c.FetchBody(kind="HEADER"),
                c.FetchBody(kind="TEXT", partial=c.Partial(0, 2048)),
            ),
        ),
    ),
    (
        b'a FETCH 1 (BODY[HEADER.FIELDS (DATE FROM "X-Y")] BODY.PEEK[header.fields.not (To)])',
        SE,
        c.Fetch(
            "a",
            False,
            ss("1"),
            (
                c.FetchBody(kind="HEADER.FIELDS", fields=("DATE", "FROM", "X-Y")),
                c.FetchBody(kind="HEADER.FIELDS.NOT", fields=("To",), peek=True),
            ),
        ),
    ),
    (
        b"a FETCH 1 (BODY[1] BODY[1.2.3] BODY[4.2.MIME] BODY[3.HEADER] BODY[3.TEXT]"
        b" BODY[2.HEADER.FIELDS (Subject)]<10.5>)",
        SE,
        c.Fetch(
            "a",
            False,
            ss("1"),
            (
                c.FetchBody((1,)),
                c.FetchBody((1, 2, 3)),
                c.FetchBody((4, 2), "MIME"),
                c.FetchBody((3,), "HEADER"),
                c.FetchBody((3,), "TEXT"),
                c.FetchBody((2,), "HEADER.FIELDS", ("Subject",), c.Partial(10, 5)),
            ),
        ),
    ),
    (
        b"a UID FETCH 1:* (BINARY[1.2] BINARY.PEEK[]<0.100> BINARY.SIZE[3] BINARY.SIZE[])",
        SE,
        c.Fetch(
            "a",
            True,
            ss("1:*"),
            (
                c.FetchBody((1, 2), binary=True),
                c.FetchBody(partial=c.Partial(0, 100), peek=True, binary=True),
                c.FetchBinarySize((3,)),
                c.FetchBinarySize(()),
            ),
        ),
    ),
    (
        b"a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)",
        SE,
        c.Fetch("a", True, ss("300:500"), (FA("FLAGS"),), 12345, True),
    ),
    (
        b"a FETCH 1:* FLAGS (CHANGEDSINCE 7)",
        SE,
        c.Fetch("a", False, ss("1:*"), (FA("FLAGS"),), 7),
    ),
]

S = c.SearchAnd


def search(wire: bytes, *keys: c.SearchKey, **kw: object) -> tuple[bytes, State, c.Command]:
    return (b"s " + wire, SE, c.Search("s", criteria=S(keys), **kw))  # type: ignore[arg-type]


SEARCHES = [
    search(b"SEARCH ALL", c.SearchAll()),
    search(
        b"SEARCH ANSWERED DELETED DRAFT FLAGGED SEEN RECENT",
        *(c.SearchFlag(f) for f in ("\\Answered", "\\Deleted", "\\Draft", "\\Flagged", "\\Seen")),
        c.SearchFlag("\\Recent"),
    ),
    search(
        b"SEARCH UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN OLD",
        *(
            c.SearchFlag(f, False)
            for f in ("\\Answered", "\\Deleted", "\\Draft", "\\Flagged", "\\Seen", "\\Recent")
        ),
    ),
    search(
        b"SEARCH NEW",
        S((c.SearchFlag("\\Recent"), c.SearchFlag("\\Seen", False))),
    ),
    search(
        b"SEARCH KEYWORD $Junk UNKEYWORD foo",
        c.SearchFlag("$Junk"),
        c.SearchFlag("foo", False),
    ),
    search(
        b'SEARCH FROM "Smith" TO bob CC {3}\r\nx y BCC z SUBJECT ""',
        c.SearchHeader("from", "Smith"),
        c.SearchHeader("to", "bob"),
        c.SearchHeader("cc", "x y"),
        c.SearchHeader("bcc", "z"),
        c.SearchHeader("subject", ""),
    ),
    search(
        b"SEARCH HEADER Message-ID <a@b> BODY foo TEXT bar",
        c.SearchHeader("message-id", "<a@b>"),
        c.SearchText("foo", body_only=True),
        c.SearchText("bar"),
    ),
    search(
        b'SEARCH BEFORE 1-Feb-1994 ON "05-jan-2024" SINCE 31-Dec-1999 SENTBEFORE 1-Jan-2000'
        b" SENTON 2-Mar-2001 SENTSINCE 3-Apr-2002",
        c.SearchDate("before", datetime.date(1994, 2, 1)),
        c.SearchDate("on", datetime.date(2024, 1, 5)),
        c.SearchDate("since", datetime.date(1999, 12, 31)),
        c.SearchDate("before", datetime.date(2000, 1, 1), True),
        c.SearchDate("on", datetime.date(2001, 3, 2), True),
        c.SearchDate("since", datetime.date(2002, 4, 3), True),
    ),
    search(
        # RFC 8474 §6: an id that is not ours matches nothing
        b"SEARCH EMAILID M00000000000000ff EMAILID other_id-2 THREADID T1"
        b" THREADID T00000000000000fe",
        c.SearchEmailId(255),
        c.SearchEmailId(None),
        c.SearchThreadId(None),
        c.SearchThreadId(254),
    ),
    search(
        # RFC 8514 §4.3; every mailbox keeps save dates, so SAVEDATESUPPORTED is ALL
        b"SEARCH SAVEDBEFORE 1-Feb-1994 SAVEDON 28-Dec-2014 SAVEDSINCE 31-Dec-1999"
        b" SAVEDATESUPPORTED",
        c.SearchSaveDate("before", datetime.date(1994, 2, 1)),
        c.SearchSaveDate("on", datetime.date(2014, 12, 28)),
        c.SearchSaveDate("since", datetime.date(1999, 12, 31)),
        c.SearchAll(),
    ),
    search(
        b"SEARCH LARGER 100 SMALLER 5000",
        c.SearchSize("larger", 100),
        c.SearchSize("smaller", 5000),
    ),
    search(
        b"SEARCH 1:3,5,*:7 UID 2:* $ UID $",
        c.SearchSequence(ss("1:3,5,*:7")),
        c.SearchSequence(ss("2:*"), uid=True),
        c.SearchSequence(ss("$")),
        c.SearchSequence(ss("$"), uid=True),
    ),
    search(
        b"SEARCH NOT SEEN OR DELETED (FLAGGED NOT DRAFT) NOT NOT ALL",
        c.SearchNot(c.SearchFlag("\\Seen")),
        c.SearchOr(
            c.SearchFlag("\\Deleted"),
            S((c.SearchFlag("\\Flagged"), c.SearchNot(c.SearchFlag("\\Draft")))),
        ),
        c.SearchNot(c.SearchNot(c.SearchAll())),
    ),
    search(
        b'SEARCH MODSEQ 620162338 MODSEQ "/flags/\\\\draft" all 5',
        c.SearchModseq(620162338),
        c.SearchModseq(5, "/flags/\\draft", "all"),
    ),
    search(
        b"SEARCH OLDER 3600 YOUNGER 60",
        c.SearchWithin("older", 3600),
        c.SearchWithin("younger", 60),
    ),
    search(b"SEARCH CHARSET utf-8 TEXT x", c.SearchText("x"), charset="UTF-8"),
    search(
        b"SEARCH CHARSET UTF-8 SUBJECT {7}\r\nstra\xc3\x9fe",
        c.SearchHeader("subject", "straße"),
        charset="UTF-8",
    ),
    search(b"SEARCH TEXT {2}\r\n\xc3\xa9", c.SearchText("é")),
    # an unsupported charset parses (byte for byte); the server answers NO [BADCHARSET]
    search(b"SEARCH CHARSET KOI8-R TEXT {1}\r\n\xc1", c.SearchText("\xc1"), charset="KOI8-R"),
    search(
        b"SEARCH RETURN (MIN MAX ALL COUNT SAVE) CHARSET US-ASCII ALL",
        c.SearchAll(),
        charset="US-ASCII",
        return_options=("MIN", "MAX", "ALL", "COUNT", "SAVE"),
    ),
    search(b"SEARCH RETURN () ALL", c.SearchAll(), return_options=()),
    (
        b"s UID SEARCH UNDELETED",
        SE,
        c.Search("s", True, None, S((c.SearchFlag("\\Deleted", False),))),
    ),
]


@pytest.mark.parametrize(("wire", "state", "expected"), VALID + SEARCHES)
def test_valid_commands(wire: bytes, state: State, expected: c.Command) -> None:
    """Each documented form parses to exactly this event (with CRLF and bare LF)."""
    assert parse_one(wire + b"\r\n", state=state) == expected
    assert parse_one(wire + b"\n", state=state) == expected


def test_utf8_quoted_accepted_only_in_utf8_mode() -> None:
    """RFC 6855 §3: 8-bit quoted strings only after ENABLE UTF8=ACCEPT (or IMAP4rev2)."""
    wire = 'a SELECT "Entwürfe"\r\n'.encode()
    assert parse_one(wire, utf8=True) == c.Select("a", "Entwürfe")
    assert parse_one(wire) == Reply(b"a BAD 8-bit characters in quoted string\r\n")
    # A literal may always carry UTF-8.
    assert parse_one(b"a SELECT {5}\r\n\xc3\xa9t\xc3\xa9\r\n") == c.Select("a", "été")
    assert parse_one(b'a SELECT "\xff"\r\n', utf8=True) == Reply(
        b"a BAD Invalid UTF-8 in quoted string\r\n"
    )


BAD: list[tuple[bytes, State, bytes]] = [
    (b"a", NA, b"a BAD Unknown command"),
    (b"a FROB", NA, b"a BAD Unknown command"),
    (b"+a NOOP", NA, b"* BAD Invalid tag"),
    (b"a(b NOOP", NA, b"* BAD Invalid tag"),
    (b" NOOP", NA, b"* BAD Invalid tag"),
    (b"a NOOP extra", NA, b"a BAD Unexpected extra arguments"),
    (b"a NOOP ", NA, b"a BAD Unexpected extra arguments"),
    (b"a LOGIN bob", NA, b"a BAD Missing argument"),
    (b"a LOGIN bob  pw", NA, b"a BAD Expected string"),
    (b'a LOGIN "bob pw', NA, b"a BAD Unterminated quoted string"),
    (b'a LOGIN "b\\ob" pw', NA, b"a BAD Invalid escape in quoted string"),
    (b'a LOGIN "b\x00ob" pw', NA, b"a BAD Invalid character in quoted string"),
    (b"a LOGIN {3}x", NA, b"a BAD Malformed literal"),
    (b"a AUTHENTICATE PLAIN !!!", NA, b"a BAD Invalid base64"),
    (b"a AUTHENTICATE PLAIN AGJ", NA, b"a BAD Invalid base64"),
    (b"a SELECT", AU, b"a BAD Missing argument"),
    (b"a SELECT INBOX (CONDSTORE", AU, b"a BAD Expected )"),
    (b"a SELECT INBOX (QRESYNC (1))", AU, b"a BAD Invalid QRESYNC parameter"),
    (b"a SELECT INBOX (QRESYNC (0 1))", AU, b"a BAD Invalid QRESYNC parameter"),
    (b"a SELECT INBOX (CONDSTORE 5)", AU, b"a BAD CONDSTORE takes no value"),
    (b"a CREATE x (USE (Drafts))", AU, b"a BAD Invalid USE parameter"),
    (b"a STATUS INBOX (FOO)", AU, b"a BAD Unknown status item"),
    (b"a STATUS INBOX ()", AU, b"a BAD Missing status items"),
    (b"a STATUS INBOX MESSAGES", AU, b"a BAD Expected ("),
    (b'a LIST "" % RETURN (STATUS ())', AU, b"a BAD Missing status items"),
    (b'a LIST "" % FOO', AU, b"a BAD Expected RETURN"),
    (b"a APPEND INBOX", AU, b"a BAD Missing message"),
    (b"a REPLACE 0 INBOX {1}\r\nx", SE, b"a BAD Number out of range"),
    (b"a REPLACE 1 INBOX", SE, b"a BAD Missing argument"),
    (b"a REPLACE 1 INBOX {1}\r\nx {1}\r\ny", SE, b"a BAD Unexpected extra arguments"),
    (b'a APPEND INBOX "hello"', AU, b"a BAD Invalid date-time"),
    (b'a APPEND INBOX "31-Feb-2020 00:00:00 +0000" {1}\r\nx', AU, b"a BAD Invalid date-time"),
    (b"a APPEND INBOX (\\Seen {1}\r\nx", AU, b"a BAD Expected flag"),
    (b"a APPEND INBOX (\\Seen)", AU, b"a BAD Missing argument"),
    (b"a APPEND INBOX UTF8 ({1}\r\nx)", AU, b"a BAD UTF8 data must be a binary literal"),
    (b"a LOGIN ~{3}\r\nbob pw", NA, b"a BAD Expected space"),
    (b"a FETCH 0 FLAGS", SE, b"a BAD Invalid sequence set"),
    (b"a FETCH 1:2:3 FLAGS", SE, b"a BAD Invalid sequence set"),
    (b"a FETCH 1,,2 FLAGS", SE, b"a BAD Invalid sequence set"),
    (b"a FETCH 4294967296 FLAGS", SE, b"a BAD Invalid sequence set"),
    (b"a FETCH 1,$ FLAGS", SE, b"a BAD Invalid sequence set"),
    (b"a FETCH 1 (FLAGS", SE, b"a BAD Expected )"),
    (b"a FETCH 1 FLAGS)", SE, b"a BAD Unexpected extra arguments"),
    (b"a FETCH 1 (FLAGS ALL)", SE, b"a BAD Invalid fetch attribute"),
    (b"a FETCH 1 BODY[0]", SE, b"a BAD Number out of range"),
    (b"a FETCH 1 BODY[MIME]", SE, b"a BAD Invalid section"),
    (b"a FETCH 1 BODY[1.FOO]", SE, b"a BAD Invalid section"),
    (b"a FETCH 1 BODY[HEADER.FIELDS]", SE, b"a BAD Expected space"),
    (b"a FETCH 1 BODY[TEXT]<0.0>", SE, b"a BAD Number out of range"),
    (b"a FETCH 1 BODY[TEXT", SE, b"a BAD Expected ]"),
    (b"a FETCH 1 BODY.PEEK", SE, b"a BAD Invalid fetch attribute"),
    (b"a FETCH 1 BINARY[HEADER]", SE, b"a BAD Invalid BINARY section"),
    (b"a FETCH 1 BINARY[1.TEXT]", SE, b"a BAD Invalid BINARY section"),
    (b"a FETCH 1 FLAGS (VANISHED)", SE, b"a BAD VANISHED requires UID FETCH with CHANGEDSINCE"),
    (b"a FETCH 1 FLAGS (FOO)", SE, b"a BAD Unknown fetch modifier"),
    (b"a STORE 1 FLAGS", SE, b"a BAD Missing argument"),
    (b"a STORE 1 *FLAGS (x)", SE, b"a BAD Expected FLAGS"),
    (b"a STORE 1 FLAGS (\\)", SE, b"a BAD Expected flag"),
    (b"a SEARCH", SE, b"a BAD Missing argument"),
    (b"a SEARCH FOO", SE, b"a BAD Unknown search key"),
    (b"a SEARCH (SEEN", SE, b"a BAD Expected )"),
    (b"a SEARCH SEEN)", SE, b"a BAD Unexpected extra arguments"),
    (b"a SEARCH OR SEEN", SE, b"a BAD Missing argument"),
    (b"a SEARCH BEFORE 1-Foo-2000", SE, b"a BAD Invalid date"),
    (b"a SEARCH BEFORE 30-Feb-2000", SE, b"a BAD Invalid date"),
    (b"a SEARCH RETURN (FOO) ALL", SE, b"a BAD Unknown search return option"),
    (b'a SEARCH MODSEQ "/flags/x" bogus 1', SE, b"a BAD Invalid entry type"),
    (b"a SEARCH LARGER x", SE, b"a BAD Expected number"),
    (
        b"a SEARCH CHARSET US-ASCII TEXT {2}\r\n\xc3\xa9",
        SE,
        b"a BAD Non-ASCII search string with CHARSET US-ASCII",
    ),
    (b"a SEARCH " + b"NOT " * 40 + b"ALL", SE, b"a BAD Too deeply nested"),
    (b"a SEARCH " + b"(" * 40 + b"ALL" + b")" * 40, SE, b"a BAD Too deeply nested"),
    (
        b"a SELECT x (A " + b"(" * 40 + b"1" + b")" * 40 + b")",
        AU,
        b"a BAD Too deeply nested",
    ),
    (b'a ID ("a")', AU, b"a BAD Expected space"),
    (b"a COPY 1", SE, b"a BAD Missing argument"),
    (b"a UID", SE, b"a BAD Unknown command"),
    (b"a UID FROB 1", SE, b"a BAD Unknown command"),
    (b"a SELECT {2}\r\n\xff\xfe", AU, b"a BAD Mailbox name is not valid UTF-8"),
    (b"a LOGIN {3}\r\na\x00b pw", NA, b"a BAD NUL in literal"),
]


@pytest.mark.parametrize(("wire", "state", "reply"), BAD)
def test_bad_commands(wire: bytes, state: State, reply: bytes) -> None:
    """Malformed commands get the exact tagged (or untagged) BAD, and nothing else."""
    assert parse_one(wire + b"\r\n", state=state) == Reply(reply + b"\r\n")


def test_parse_command_directly() -> None:
    """parse_command works on one framed command without a connection."""
    assert parse_command(b"a NOOP") == c.Noop("a")
    with pytest.raises(ParseError):
        parse_command(b"")


def test_sequence_set_resolve() -> None:
    """'*' is the largest number; reversed ranges come out ordered; '$' has no numbers."""
    assert ss("5:2,*,3:*").resolve(10) == [(2, 5), (10, 10), (3, 10)]
    with pytest.raises(ValueError):
        ss("$").resolve(10)
    assert list(ss("1,2")) == [R(1), R(2)]
