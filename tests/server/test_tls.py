"""The certificate made on first start (issue 16 item 6): a leaf, not a CA, for every
name a local client uses; one an earlier version made as a CA is replaced."""

from __future__ import annotations

import contextlib
import datetime
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pillarbox.server.tls import ensure_self_signed, server_context


def test_self_signed_is_a_leaf_for_every_local_name(tmp_path: Path) -> None:
    """RFC 5280 §4.2.1.9/§4.2.1.3/§4.2.1.12: CA:FALSE, digitalSignature, serverAuth; the
    hostname, localhost, 127.0.0.1 and ::1 as names; a client given it as its only trust
    anchor accepts it for each name it carries."""
    cert_path, key_path = ensure_self_signed(tmp_path, "mail.example.test")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mail.example.test", "localhost"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    client = ssl.create_default_context(cafile=str(cert_path))
    server = server_context(cert_path, key_path)
    for name in ("mail.example.test", "localhost", "127.0.0.1"):
        c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
        c = client.wrap_bio(c_in, c_out, server_hostname=name)
        s = server.wrap_bio(s_in, s_out, server_side=True)
        for _ in range(10):  # a handshake in memory: a few flights each way
            for side in (c, s):
                with contextlib.suppress(ssl.SSLWantReadError):
                    side.do_handshake()
            s_in.write(c_out.read())
            c_in.write(s_out.read())
        assert c.version() is not None, name


def test_a_ca_certificate_from_an_earlier_version_is_replaced(tmp_path: Path) -> None:
    cert_path, _ = ensure_self_signed(tmp_path, "mail.example.test")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")])
    now = datetime.datetime.now(datetime.UTC)
    old = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(old.public_bytes(serialization.Encoding.PEM))
    ensure_self_signed(tmp_path, "mail.example.test")
    again = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert again.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_workers_starting_together_make_one_matching_pair(tmp_path: Path) -> None:
    """Several workers (`[server] workers`) start at once on a fresh data directory: each
    gets the same certificate, and its key matches it (a context loads), where unlocked
    generation once made a worker die with ENOENT."""
    import concurrent.futures
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(4, mp_context=ctx) as pool:
        futures = [pool.submit(_make_and_read, tmp_path / "tls") for _ in range(8)]
        certs = {f.result() for f in futures}
    assert len(certs) == 1
    server_context(tmp_path / "tls" / "selfsigned.crt", tmp_path / "tls" / "selfsigned.key")


def _make_and_read(tls_dir: Path) -> bytes:
    cert, _key = ensure_self_signed(tls_dir, "mail.example.test")
    return cert.read_bytes()
