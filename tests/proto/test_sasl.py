"""SASL PLAIN (RFC 4616) and LOGIN step machines, independent of any protocol."""

from __future__ import annotations

import pytest

from pillarbox.proto.sasl import (
    MECHANISMS,
    Challenge,
    Credentials,
    LoginMechanism,
    PlainMechanism,
    SaslError,
    server_mechanism,
)


def test_registry() -> None:
    assert MECHANISMS == ("PLAIN", "LOGIN")
    assert isinstance(server_mechanism("plain"), PlainMechanism)
    assert isinstance(server_mechanism("LOGIN"), LoginMechanism)
    assert server_mechanism("CRAM-MD5") is None


def test_plain_with_initial_response() -> None:
    step = PlainMechanism().start(b"\x00alice@example.test\x00s3cret pass")
    assert step == Credentials("alice@example.test", "s3cret pass", "")


def test_plain_without_initial_response() -> None:
    mech = PlainMechanism()
    assert mech.start(None) == Challenge(b"")
    assert mech.respond("admin\x00jörg\x00pässword".encode()) == Credentials(
        "jörg", "pässword", "admin"
    )
    with pytest.raises(SaslError):
        mech.respond(b"\x00a\x00b")


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"alice",
        b"\x00alice",
        b"\x00\x00pw",
        b"\x00alice\x00",
        b"a\x00b\x00c\x00d",
        b"\x00\xff\xfe\x00pw",
        b"\x00" + b"a" * 256 + b"\x00pw",
    ],
)
def test_plain_malformed(message: bytes) -> None:
    with pytest.raises(SaslError):
        PlainMechanism().start(message)


def test_login_steps() -> None:
    mech = LoginMechanism()
    assert mech.start(None) == Challenge(b"Username:")
    assert mech.respond(b"bob@example.test") == Challenge(b"Password:")
    assert mech.respond(b"pw") == Credentials("bob@example.test", "pw")
    with pytest.raises(SaslError):
        mech.respond(b"again")


def test_login_initial_response_is_user_name() -> None:
    mech = LoginMechanism()
    assert mech.start(b"bob") == Challenge(b"Password:")
    assert mech.respond(b"pw") == Credentials("bob", "pw")


@pytest.mark.parametrize("bad", [b"", b"\xff", b"a\x00b"])
def test_login_malformed(bad: bytes) -> None:
    with pytest.raises(SaslError):
        LoginMechanism().start(bad)
    mech = LoginMechanism()
    mech.start(b"user")
    with pytest.raises(SaslError):
        mech.respond(bad)
