"""Password hashing and the per-IP failure throttle."""

from __future__ import annotations

import pytest

from pillarbox.services.accounts import AccountError, check_password, split_address
from pillarbox.services.auth import FailureThrottle, hash_password, verify_password


def test_argon2id_hash_roundtrip() -> None:
    """Hashes are argon2id, verify the right password only, and never contain it."""
    hashed = hash_password("s3cret-enough")
    assert hashed.startswith("$argon2id$")
    assert "s3cret-enough" not in hashed
    assert verify_password(hashed, "s3cret-enough")
    assert not verify_password(hashed, "wrong")
    assert not verify_password("not-a-hash", "s3cret-enough")


def test_throttle_grows_per_ip_and_resets_on_success() -> None:
    """Each failure from an IP doubles its delay up to the cap; other IPs are unaffected."""
    throttle = FailureThrottle(base=0.5, cap=4.0, window=900)
    assert throttle.delay_for("192.0.2.1") == 0
    delays = []
    for _ in range(6):
        throttle.failed("192.0.2.1")
        delays.append(throttle.delay_for("192.0.2.1"))
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert throttle.delay_for("192.0.2.2") == 0
    throttle.succeeded("192.0.2.1")
    assert throttle.delay_for("192.0.2.1") == 0


@pytest.mark.parametrize("password", ["", "short", "password", "aaaaaaaaaaaa", "12345678"])
def test_weak_passwords_refused(password: str) -> None:
    with pytest.raises(AccountError):
        check_password(password)


@pytest.mark.parametrize(
    "address", ["nodomain", "@example.test", "a@b", "a b@example.test", "a..b@example.test"]
)
def test_bad_addresses_refused(address: str) -> None:
    with pytest.raises(AccountError):
        split_address(address)


def test_address_normalised() -> None:
    assert split_address(" Alice@Example.TEST ") == ("alice", "example.test")
    assert split_address("bob@bücher.example") == ("bob", "xn--bcher-kva.example")
