"""TLS contexts for the listeners, and the self-signed certificate made on first start.

With no certificate configured, a key and a self-signed certificate for the hostname
are generated once into `data_dir/tls/` and reused on every later start, so clients that
pinned it keep working. It is a leaf certificate (``CA:FALSE``, digitalSignature,
serverAuth), not a CA: clients such as mbsync that are given it as their CA file refuse a
CA certificate presented as a server's own (RFC 5280 §4.2.1.9: a CA key signs
certificates, it is not the end entity). One made by an earlier version as a CA is
replaced once. Contexts allow TLS 1.2 and later only (RFC 8996, RFC 8314 §4.1).
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def ensure_self_signed(tls_dir: Path, hostname: str) -> tuple[Path, Path]:
    """Return (cert, key) paths under tls_dir, generating them if absent (or if the one
    there is a CA certificate from an earlier version)."""
    cert_path = tls_dir / "selfsigned.crt"
    key_path = tls_dir / "selfsigned.key"
    if cert_path.is_file() and key_path.is_file() and not _is_ca(cert_path):
        return cert_path, key_path
    tls_dir.mkdir(parents=True, exist_ok=True)
    # Several workers start at once (`[server] workers`): one makes the pair, the others
    # wait for it and take it. Unlocked, two made two pairs and could each rename the
    # other's temporary file away (a worker died at start with ENOENT), or leave one's
    # key beside the other's certificate.
    with open(tls_dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cert_path.is_file() and key_path.is_file() and not _is_ca(cert_path):
            return cert_path, key_path
        return _make_self_signed(cert_path, key_path, hostname)


def _make_self_signed(cert_path: Path, key_path: Path, hostname: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [
        x509.DNSName(hostname),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        # RFC 5280 §4.2.1.9, §4.2.1.3, §4.2.1.12: an end entity for TLS servers.
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp_key = key_path.with_suffix(".key.tmp")
    fd = os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_bytes)
    tmp_cert = cert_path.with_suffix(".crt.tmp")
    tmp_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp_key, key_path)
    os.replace(tmp_cert, cert_path)
    return cert_path, key_path


def _is_ca(cert_path: Path) -> bool:
    """The certificate at `cert_path` says it is a CA (or cannot be read)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False
    except (OSError, ValueError):
        return True  # unreadable: make a new one


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side context for STARTTLS and implicit-TLS listeners."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    ctx.options |= ssl.OP_NO_COMPRESSION
    return ctx
