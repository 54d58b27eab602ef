"""Identities: an address a user sends as, with the name and signature that go with it.

The address is the account's own or an alias delivering to it (`services.identities`
checks that); the webmail's compose page puts the display name into From: and the
signature below the body (RFC 3676 §4.3 signature separator).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NewIdentity:
    account_id: int
    address: str  # canonical local@domain
    display_name: str = ""
    signature: str = ""  # plain text, without the "-- " separator


@dataclass(frozen=True, slots=True)
class Identity:
    id: int
    account_id: int
    address: str
    display_name: str = ""
    signature: str = ""
