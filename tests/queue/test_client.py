"""queue.client: one SMTP session against a real fault-injecting peer on 127.0.0.1 —
replies map to per-recipient outcomes, extensions are used only when offered, TLS and
AUTH go as configured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pillarbox.model import QueuedRecipient, RecipientState
from pillarbox.queue.client import (
    Endpoint,
    Pool,
    Session,
    SessionError,
    SessionPolicy,
    Transaction,
)
from pillarbox.server.tls import ensure_self_signed, server_context
from tests.queue.peer import Peer, refused_port

MESSAGE = (
    b"From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: hi\r\n\r\nHello.\r\n.dot\r\n"
)
POLICY = SessionPolicy("mail.example.test", connect_timeout=5.0, command_timeout=5.0)


def rcpt(address: str, position: int = 0, **kw: str) -> QueuedRecipient:
    return QueuedRecipient(address, position=position, **kw)  # type: ignore[arg-type]


async def _open(peer: Peer, policy: SessionPolicy = POLICY) -> Session:
    return await Session.open(Endpoint("mx.remote.test", peer.host, peer.port), policy)


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    p = await Peer().start()
    yield p
    await p.stop()


async def test_250_delivers_with_size_and_dsn_parameters(peer: Peer) -> None:
    """A 250 is DELIVERED with the peer's reply; SIZE is given, and the DSN parameters
    (RET, ENVID, NOTIFY, ORCPT) are passed on because the peer offers DSN; the body
    arrives as sent (dot-stuffing undone)."""
    session = await _open(peer)
    tx = Transaction(
        "alice@example.test",
        (rcpt("bob@remote.test", notify="SUCCESS,FAILURE", orcpt="rfc822;bob@remote.test"),),
        MESSAGE,
        envid="ENV1",
        ret="HDRS",
    )
    [outcome] = await session.send(tx)
    await session.close()
    assert outcome.state is RecipientState.DELIVERED
    assert outcome.status == "2.0.0"
    assert outcome.diagnostic == "250 2.0.0 Ok: queued"
    assert outcome.remote_mta == "mx.remote.test"
    [got] = peer.received
    assert got.mail == f"MAIL FROM:<alice@example.test> SIZE={len(MESSAGE)} RET=HDRS ENVID=ENV1"
    assert got.rcpts == [
        "RCPT TO:<bob@remote.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@remote.test"
    ]
    assert got.data == MESSAGE
    assert any(c.startswith("EHLO mail.example.test") for c in peer.commands)


async def test_rcpt_550_fails_451_defers_per_recipient(peer: Peer) -> None:
    """Each recipient gets its own RCPT reply: 550 → FAILED with the reply as diagnostic,
    451 → QUEUED (deferred), 250 → DELIVERED; the message goes to the accepted one."""
    peer.rcpt_replies = {
        "gone@remote.test": "550 5.1.1 No such user",
        "busy@remote.test": "451 4.3.0 Try later",
    }
    session = await _open(peer)
    tx = Transaction(
        "alice@example.test",
        (rcpt("gone@remote.test", 0), rcpt("busy@remote.test", 1), rcpt("bob@remote.test", 2)),
        MESSAGE,
    )
    outcomes = await session.send(tx)
    await session.close()
    assert [(o.position, o.state, o.status) for o in outcomes] == [
        (0, RecipientState.FAILED, "5.1.1"),
        (1, RecipientState.QUEUED, "4.3.0"),
        (2, RecipientState.DELIVERED, "2.0.0"),
    ]
    assert outcomes[0].diagnostic == "550 5.1.1 No such user"
    assert len(peer.received) == 1 and len(peer.received[0].rcpts) == 1


async def test_data_refusal_and_mail_refusal(peer: Peer) -> None:
    """554 after the dot fails the accepted recipients; 421 to MAIL defers everyone, and
    the session stays usable after RSET."""
    peer.data_reply = "554 5.7.1 Spam"
    session = await _open(peer)
    [o] = await session.send(Transaction("a@example.test", (rcpt("b@remote.test"),), MESSAGE))
    assert (o.state, o.status, o.diagnostic) == (RecipientState.FAILED, "5.7.1", "554 5.7.1 Spam")
    peer.mail_reply = "452 4.3.1 Insufficient storage"
    [o] = await session.send(Transaction("a@example.test", (rcpt("b@remote.test"),), MESSAGE))
    assert (o.state, o.status) == (RecipientState.QUEUED, "4.3.1")
    assert await session.reset()
    await session.close()


async def test_connection_refused_is_a_session_error() -> None:
    """Nobody listening: SessionError with a temporary status (the runner defers)."""
    port = refused_port()
    with pytest.raises(SessionError) as info:
        await Session.open(Endpoint("mx.remote.test", "127.0.0.1", port), POLICY)
    assert info.value.status.startswith("4.")


async def test_utf8_address_to_peer_without_smtputf8_fails_5_6_7() -> None:
    """RFC 6531 §3.5: a UTF-8 envelope address to a peer without SMTPUTF8 fails at once
    with 5.6.7, and no MAIL command is sent; a UTF-8 header alone gives 5.6.9."""
    peer = await Peer(extensions=("8BITMIME", "DSN")).start()
    session = await _open(peer)
    [o] = await session.send(
        Transaction("alice@example.test", (rcpt("jürgen@remote.test"),), MESSAGE)
    )
    assert (o.state, o.status) == (RecipientState.FAILED, "5.6.7")
    assert "SMTPUTF8" in o.diagnostic
    header_utf8 = b"From: alice@example.test\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\n\r\nx\r\n"
    [o] = await session.send(
        Transaction("alice@example.test", (rcpt("bob@remote.test"),), header_utf8)
    )
    assert (o.state, o.status) == (RecipientState.FAILED, "5.6.9")
    assert not any(c.startswith("MAIL") for c in peer.commands)
    await session.close()
    await peer.stop()


async def test_utf8_to_peer_with_smtputf8(peer: Peer) -> None:
    """With SMTPUTF8 offered, MAIL carries SMTPUTF8 (and BODY=8BITMIME for the 8-bit
    content) and the address goes as UTF-8."""
    session = await _open(peer)
    data = "From: jürgen@example.test\r\n\r\nGrüße\r\n".encode()
    [o] = await session.send(Transaction("jürgen@example.test", (rcpt("zoë@remote.test"),), data))
    await session.close()
    assert o.state is RecipientState.DELIVERED
    assert "SMTPUTF8" in peer.received[0].mail and "BODY=8BITMIME" in peer.received[0].mail


async def test_8bit_without_8bitmime_fails_5_6_3() -> None:
    """An 8-bit body to a peer without 8BITMIME fails with 5.6.3 (we do not downgrade)."""
    peer = await Peer(extensions=("DSN",)).start()
    session = await _open(peer)
    data = b"From: a@example.test\r\n\r\n\xe9t\xe9\r\n"
    [o] = await session.send(Transaction("a@example.test", (rcpt("b@remote.test"),), data))
    await session.close()
    await peer.stop()
    assert (o.state, o.status) == (RecipientState.FAILED, "5.6.3")


async def test_no_dsn_at_peer_notify_gives_relayed() -> None:
    """RFC 3461 §4.1: a peer without DSN gets no NOTIFY/ORCPT, and a recipient that asked
    NOTIFY is RELAYED; one that asked nothing is DELIVERED."""
    peer = await Peer(extensions=("8BITMIME",)).start()
    session = await _open(peer)
    tx = Transaction(
        "a@example.test",
        (rcpt("b@remote.test", 0, notify="SUCCESS"), rcpt("c@remote.test", 1)),
        MESSAGE,
        envid="E",
        ret="FULL",
    )
    outcomes = await session.send(tx)
    await session.close()
    await peer.stop()
    assert [o.state for o in outcomes] == [RecipientState.RELAYED, RecipientState.DELIVERED]
    assert peer.received[0].mail == "MAIL FROM:<a@example.test>"
    assert "NOTIFY" not in peer.received[0].rcpts[0]


async def test_starttls_opportunistic_unverified(tmp_path: Path) -> None:
    """To an MX, STARTTLS is used when offered even with a self-signed certificate, and
    EHLO is said again after it (RFC 3207 §4.2)."""
    cert, key = ensure_self_signed(tmp_path, "mx.remote.test")
    peer = await Peer(tls=server_context(cert, key)).start()
    session = await _open(peer)
    [o] = await session.send(Transaction("a@example.test", (rcpt("b@remote.test"),), MESSAGE))
    await session.close()
    await peer.stop()
    assert o.state is RecipientState.DELIVERED and session.tls
    assert peer.received[0].tls
    assert [c.split()[0] for c in peer.commands[:3]] == ["EHLO", "STARTTLS", "EHLO"]


async def test_relay_requires_and_verifies_tls(tmp_path: Path) -> None:
    """relay_security=starttls: a relay without STARTTLS is refused (4.7.0, nothing sent
    in plain text); with verification on, a self-signed relay is refused; with it off and
    credentials set, the session logs in."""
    plain = await Peer().start()
    required = SessionPolicy("mail.example.test", 5.0, 5.0, require_tls=True, verify_tls=True)
    with pytest.raises(SessionError) as info:
        await _open(plain, required)
    assert info.value.status == "4.7.0"
    await plain.stop()

    cert, key = ensure_self_signed(tmp_path, "relay.test")
    relay = await Peer(tls=server_context(cert, key), auth=("user", "secret")).start()
    with pytest.raises(SessionError):
        await _open(relay, required)
    unverified = SessionPolicy(
        "mail.example.test", 5.0, 5.0, require_tls=True, username="user", password="secret"
    )
    session = await _open(relay, unverified)
    [o] = await session.send(Transaction("a@example.test", (rcpt("b@remote.test"),), MESSAGE))
    await session.close()
    assert o.state is RecipientState.DELIVERED
    wrong = SessionPolicy(
        "mail.example.test", 5.0, 5.0, require_tls=True, username="user", password="x"
    )
    with pytest.raises(SessionError) as info:
        await _open(relay, wrong)
    assert info.value.status == "4.7.0"
    await relay.stop()


async def test_pool_reuses_idle_sessions_and_bounds_them(peer: Peer) -> None:
    """A released session is handed out again (after RSET) for the same destination;
    a destination at its limit waits; an idle session of another destination is closed
    to make room when the total is reached."""
    pool = Pool(max_total=2, max_per_destination=1, idle_timeout=60.0)
    assert await pool.acquire("a.test") is None  # a slot for a new session
    session = await _open(peer)
    await pool.release("a.test", session)
    assert await pool.take_idle("a.test") is session
    await pool.release("a.test", session)
    assert await pool.acquire("b.test") is None
    assert pool.total == 2
    # c.test needs room: the idle a.test session is closed for it.
    assert await pool.acquire("c.test") is None
    assert pool.total == 2
    assert await pool.take_idle("a.test") is None
    await pool.release("b.test", None)
    await pool.release("c.test", None)
    await pool.close()
    assert pool.total == 0
    assert peer.connections == 1
