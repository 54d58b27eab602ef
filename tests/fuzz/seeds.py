"""Seed inputs per fuzz target: real sessions and field values, so the fuzzer starts deep
in each grammar instead of having to discover the command words. Protocol seeds start
with two bytes of choices (see `targets`). The message target reads the corpus of
`tests/message/corpus` where it lies (SEED_DIRS)."""

from __future__ import annotations

from . import test_imap_fuzz, test_smtp_fuzz

_CHOICES = [b"\x00\x00", b"\x01\x07", b"\xa5\x5a"]

_POP3 = [
    b"CAPA\r\nUSER alice@example.test\r\nPASS secret\r\nSTAT\r\nLIST\r\nLIST 1\r\n"
    b"UIDL\r\nRETR 1\r\nTOP 1 10\r\nDELE 1\r\nRSET\r\nNOOP\r\nQUIT\r\n",
    b"AUTH PLAIN AGFsaWNlAHB3\r\nSTAT\r\nQUIT\r\n",
    b"AUTH PLAIN\r\nAGFsaWNlAHB3\r\nAUTH LOGIN\r\n*\r\nAUTH\r\n",
    b"STLS\r\nUTF8\r\nUSER x\r\nPASS y\r\nAPOP a b\r\nuidl 2\r\nlist 99999999999\r\n",
]

_SASL = [
    b"\x00\x00alice\x00secret",
    b"\x80alice@example.test\x00alice\x00pw",
    b"\x81alice\nsecret",
    b"\x01alice\nsecret\nextra",
    b"\x00\x00\xc3\xa9\x00\xff",
]

_HEADERS = [
    b'"Joe Q. Public" <john.q.public@example.com>, Mary <mary@x.test>, jdoe@one.test',
    b"A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, undisclosed:;",
    b"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
    b"=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>",
    b"=?UTF-8?B?w6kgw6kgw6k=?= =?utf-8*en?q?a_b?=\r\n =?x-unknown?B?AAAA?=",
    b"Re: [list] Fwd: Re: hello (fwd)",
    b"multipart/mixed; boundary=\"==b\"; charset*0*=utf-8'en'%C3%A9; charset*1=x",
    b'attachment; filename*=UTF-8\'\'%E2%82%AC.txt; size=3; filename="a\\"b.txt"',
    b"<a@b> <c@d>\r\n\t<e@f> (comment) <broken",
    b'@route1,@route2:user@[IPv6:::1], "quoted\\""@example.test',
]

_MUTF7 = [
    b"INBOX",
    b"&AOk-t&AOk-",
    b"&ZeVnLIqe-",
    b"Entw&APw-rfe/&2D3eAw-",
    b"&-&-&",
    b"&AGE-&AGE-",
    b"&U,BTFw-",
]

_MAILAUTH = [
    b"DKIM-Signature: v=1; a=rsa-sha256; d=example.test; s=sel; c=relaxed/relaxed;\r\n"
    b" h=From:To:Subject; bh=abc=; b=def\r\n ghi=\r\nFrom: A <a@example.test>\r\n\r\nbody",
    b"v=DMARC1; p=reject; sp=none; adkim=s; aspf=r; pct=50; rua=mailto:r@x.test",
    b"v=DMARC1;p=quarantine",
    b"From: a@b.test, Group: c@d.test;\r\nFrom: e@[1.2.3.4]\r\n\r\n",
    b"Authentication-Results: (c) MX.example.test.; spf=pass\r\n"
    b'Authentication-Results: "mx.example.test" (x\\)) ; dkim=fail\r\n'
    b"Authentication-Results: other.test; dmarc=none\r\n\r\nbody",
]

_LIST = [
    b"\x00*\x00INBOX/Sent",
    b"INBOX/\x00%\x00INBOX/Sent",
    b"\x00Inbox*\x00INBOX/a/b",
    b"\x00&AOk-*%/x\x00\xc3\xa9t\xc3\xa9/x",
    b"a/\x00/b%\x00/b/c",
]

_RULES = [
    b"Alice@Example.ORG.",
    b'"alice"@EXAMPLE.org',
    "jörg@bücher.example".encode(),
    b'"a b"@xn--bcher-kva.example',
    b"INBOX/Sent/..//x",
    b"Archive/2024 /a\x7f",
]

SEEDS: dict[str, list[bytes]] = {
    "imap": [c + s for c in _CHOICES for s in test_imap_fuzz.CORPUS],
    "smtp": [c + s for c in _CHOICES for s in test_smtp_fuzz.SEEDS],
    "pop3": [c + s for c in _CHOICES for s in _POP3],
    "sasl": _SASL,
    "headers": _HEADERS,
    "mutf7": _MUTF7,
    "list_pattern": _LIST,
    "rules": _RULES,
    "mailauth": _MAILAUTH,
}

SEED_DIRS: dict[str, list[str]] = {
    "message": ["tests/message/corpus"],
}
