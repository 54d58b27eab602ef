"""DKIM (RFC 6376, RFC 8463 for Ed25519): key generation, signing, verifying.

The cryptography and canonicalisation are dkimpy's; this module chooses the parameters,
converts our stored keys to the forms dkimpy takes, and classifies its outcomes into the
RFC 8601 results. Verification looks every signature's key up first, concurrently, through
the injected `Resolver`; dkimpy then runs in a worker thread on those answers only, so it
never touches the network and a DNS failure is told apart from a bad signature (dkimpy's
own lookup turns both into False).

Keys (`model.DkimKey`): the private key is PEM PKCS#8 for both algorithms; the public key
is the base64 p= value: the DER SubjectPublicKeyInfo for RSA (RFC 6376 §3.6.1, as
every signer publishes it) and the raw 32-byte key for Ed25519 (RFC 8463 §4.2).
"""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import dkim as dkimpy
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dkim.util import InvalidTagValueList, parse_tag_value

from pillarbox.mailauth.dns import DnsTempError, Resolver
from pillarbox.message.headers import scan_header
from pillarbox.model.queue import DkimKey

ALGORITHMS = ("ed25519-sha256", "rsa-sha256")
RSA_BITS = 2048  # RFC 8301 §3.2: at least 1024, 2048 recommended
MAX_SIGNATURES = 10  # signatures verified per message; more are ignored (a cheap DoS bound)
MIN_RSA_BITS = 1024  # RFC 8301 §3.2: verifiers must not consider shorter keys valid


@dataclass(frozen=True, slots=True)
class DkimResult:
    """The outcome for one DKIM-Signature field (RFC 8601 §2.7.1)."""

    result: str  # pass, fail, neutral, temperror, permerror
    domain: str  # d=, the signing domain ("" if unreadable)
    selector: str  # s=
    algorithm: str  # a=
    reason: str  # a short human-readable reason


def generate_key(domain: str, selector: str, algorithm: str = "ed25519-sha256") -> DkimKey:
    """A new signing key for `domain` under `selector` (Ed25519, or RSA 2048)."""
    private: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    if algorithm == "ed25519-sha256":
        private = ed25519.Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    elif algorithm == "rsa-sha256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        public = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    else:
        raise ValueError(f"unknown DKIM algorithm {algorithm!r}; use one of {ALGORITHMS}")
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return DkimKey(
        domain=domain,
        selector=selector,
        algorithm=algorithm,
        private_key=pem,
        public_key=base64.b64encode(public).decode("ascii"),
        created_at=datetime.now(UTC),
    )


def key_record(key: DkimKey) -> str:
    """The TXT record to publish at `selector._domainkey.domain` (RFC 6376 §3.6.1)."""
    kind = "ed25519" if key.algorithm == "ed25519-sha256" else "rsa"
    return f"v=DKIM1; k={kind}; p={key.public_key}"


def _dkimpy_private_key(key: DkimKey) -> bytes:
    """Our PKCS#8 PEM in the form dkimpy signs with: PKCS#1 PEM for RSA, base64 of the
    32-byte seed for Ed25519."""
    private = serialization.load_pem_private_key(key.private_key, password=None)
    if isinstance(private, rsa.RSAPrivateKey):
        return private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    if isinstance(private, ed25519.Ed25519PrivateKey):
        seed = private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return base64.b64encode(seed)
    raise ValueError(f"DKIM key of {key.domain} is neither RSA nor Ed25519")


def sign(message: bytes, key: DkimKey) -> bytes:
    """The complete `DKIM-Signature: ...\\r\\n` field to put on top of `message`.

    relaxed/relaxed canonicalisation (RFC 6376 §3.4), which survives the header refolding
    and trailing-whitespace changes of relays; the header fields RFC 6376 §5.4.1 recommends
    that are present (dkimpy's list), From signed once more than it occurs so that a
    second From cannot be added (RFC 6376 §8.15). dkimpy takes t= from the clock.
    """
    if key.algorithm not in ALGORITHMS:
        raise ValueError(f"unknown DKIM algorithm {key.algorithm!r}")
    signer = dkimpy.DKIM(message, signature_algorithm=key.algorithm.encode())
    field: bytes = signer.sign(
        key.selector.encode(),
        key.domain.encode(),
        _dkimpy_private_key(key),
        canonicalize=(b"relaxed", b"relaxed"),
    )
    return field


# -- verifying ---------------------------------------------------------------------------


def _signature_tags(message: bytes) -> list[dict[bytes, bytes]]:
    """The tags of each DKIM-Signature field, top first ({} for an unreadable one)."""
    fields, _ = scan_header(message)  # never raises, unlike dkimpy's parser
    found: list[dict[bytes, bytes]] = []
    for field in fields:
        if field.name == "dkim-signature":
            try:
                found.append(parse_tag_value(field.value))
            except InvalidTagValueList:
                found.append({})
    return found[:MAX_SIGNATURES]


def _text(tags: dict[bytes, bytes], tag: bytes) -> str:
    return re.sub(r"\s+", "", tags.get(tag, b"").decode("ascii", "replace")).lower()


def _key_name(tags: dict[bytes, bytes]) -> str:
    return f"{_text(tags, b's')}._domainkey.{_text(tags, b'd')}"  # RFC 6376 §3.6.2.1


class _KeyLookupFailed(Exception):
    """Raised through dkimpy from our dnsfunc: the key lookup failed temporarily."""


def _verify_one(
    verifier: dkimpy.DKIM,
    index: int,
    tags: dict[bytes, bytes],
    keys: dict[str, list[bytes] | DnsTempError],
) -> DkimResult:
    domain, selector, algorithm = _text(tags, b"d"), _text(tags, b"s"), _text(tags, b"a")

    def result(outcome: str, reason: str) -> DkimResult:
        return DkimResult(outcome, domain, selector, algorithm, reason)

    if not tags or not domain or not selector:
        return result("neutral", "malformed signature")  # RFC 8601 §2.7.1: syntax errors
    looked_up = False

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        nonlocal looked_up
        looked_up = True
        records = keys.get(name.decode("ascii", "replace").rstrip(".").lower(), [])
        if isinstance(records, DnsTempError):
            raise _KeyLookupFailed(str(records))
        return records[0] if records else None

    name = _key_name(tags)
    records = keys.get(name, [])
    try:
        if verifier.verify(index, dnsfunc=dnsfunc):
            return result("pass", "")
    except _KeyLookupFailed as e:
        return result("temperror", f"key lookup failed: {e}")  # RFC 6376 §6.1.2
    except dkimpy.KeyFormatError as e:
        return result("permerror", f"bad key: {e}")
    except dkimpy.ValidationError as e:
        if looked_up:  # the signature was well formed: the body hash did not match
            return result("fail", str(e))
        return result("neutral", f"signature not usable: {e}")  # RFC 8601 §2.7.1
    except dkimpy.DKIMException as e:
        return result("neutral", f"signature not usable: {e}")
    except Exception as e:  # dkimpy on hostile input (bad base64, odd bytes)
        return result("permerror", f"unverifiable: {type(e).__name__}")
    if isinstance(records, list) and not records:
        return result("permerror", f"no key at {name}")  # RFC 6376 §6.1.2
    if isinstance(records, list):
        try:
            dkimpy.evaluate_pk(name.encode(), records[0])
        except dkimpy.DKIMException as e:
            return result("permerror", f"bad key: {e}")
    return result("fail", "signature did not verify")


def _verify_all(
    message: bytes,
    signatures: list[dict[bytes, bytes]],
    keys: dict[str, list[bytes] | DnsTempError],
) -> list[DkimResult]:
    try:
        verifier = dkimpy.DKIM(message, minkey=MIN_RSA_BITS)
    except dkimpy.DKIMException as e:  # a header dkimpy cannot split (a line with no colon)
        return [
            DkimResult("neutral", _text(t, b"d"), _text(t, b"s"), _text(t, b"a"), str(e)[:80])
            for t in signatures
        ]
    return [_verify_one(verifier, i, tags, keys) for i, tags in enumerate(signatures)]


async def verify(message: bytes, resolver: Resolver) -> list[DkimResult]:
    """The result of each DKIM-Signature of `message` (at most MAX_SIGNATURES), top first.

    An empty list means the message is unsigned (RFC 8601 reports dkim=none).
    """
    signatures = _signature_tags(message)
    if not signatures:
        return []
    names = sorted({_key_name(tags) for tags in signatures if tags})

    async def lookup(name: str) -> list[bytes] | DnsTempError:
        try:
            return await resolver.txt(name)
        except DnsTempError as e:
            return e

    answers = await asyncio.gather(*(lookup(name) for name in names))
    keys = dict(zip(names, answers, strict=True))
    return await asyncio.to_thread(_verify_all, message, signatures, keys)
