"""A small certificate authority for the broker's TLS: a CA, a server certificate, and a
client certificate per terminal whose CN is its device id (pure: PEM bytes in and out).

For a city without its own PKI, and for the demo and the tests, which make a throwaway
CA each run. Keys are ECDSA P-256 (what current terminals' TLS stacks and Mosquitto's
OpenSSL take, and fast to make). Nothing here touches a file; `gateway/devices/tls_files.py`
puts the results where the broker and the gateway read them.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 825  # the longest server lifetime clients still accept
CLIENT_DAYS = 1095  # a terminal's service life between refits
# OpenSSL refuses a CRL past its next update, and then every client certificate with it:
# rewritten at each device change, it must outlast long quiet spells.
CRL_DAYS = 3650
# Clocks of terminals fresh from the box are often behind; a certificate valid only from
# "now" would fail on them for minutes.
BACKDATE = timedelta(hours=1)


class PkiError(ValueError):
    """A certificate or key that cannot be used as asked."""


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes = b""

    def __repr__(self) -> str:  # the key never reaches a log through a repr
        return f"Issued(subject={subject_cn(self.cert_pem)!r})"


def new_ca(name: str = "cgt-gateway throwaway CA", days: int = CA_DAYS) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(name)
    builder = (
        _builder(subject, subject, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return Issued(_pem(builder.sign(key, hashes.SHA256())), _key_pem(key))


def issue_server(ca: Issued, hostnames: Sequence[str], days: int = SERVER_DAYS) -> Issued:
    """A broker certificate valid for each host name or IP address given."""
    if not hostnames:
        raise PkiError("a server certificate needs at least one host name or address")
    alternative: list[x509.GeneralName] = []
    for host in dict.fromkeys(hostnames):
        try:
            alternative.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alternative.append(x509.DNSName(host))
    return _issue(
        ca,
        hostnames[0],
        days,
        ExtendedKeyUsageOID.SERVER_AUTH,
        x509.SubjectAlternativeName(alternative),
    )


def issue_client(ca: Issued, common_name: str, days: int = CLIENT_DAYS) -> Issued:
    """A terminal's certificate: the broker takes its CN as the username (= device id)."""
    return _issue(ca, common_name, days, ExtendedKeyUsageOID.CLIENT_AUTH, None)


def subject_cn(cert_pem: bytes) -> str:
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as error:
        raise PkiError(f"not a PEM certificate: {error}") from None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the certificate (DER), as `openssl x509 -fingerprint -sha256` prints it."""
    digest = x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA256())
    return ":".join(f"{byte:02X}" for byte in digest)


def serial_number(cert_pem: bytes) -> int:
    return x509.load_pem_x509_certificate(cert_pem).serial_number


def make_crl(ca: Issued, serials: Iterable[int], days: int = CRL_DAYS) -> bytes:
    """A revocation list naming `serials`, signed by the CA (PEM). Mosquitto re-reads it
    on SIGHUP and refuses those certificates at the handshake."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - BACKDATE)
        .next_update(now + timedelta(days=days))
    )
    for serial in serials:
        revoked = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now)
        builder = builder.add_revoked_certificate(revoked.build())
    crl = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    return crl.public_bytes(serialization.Encoding.PEM)


def not_after(cert_pem: bytes) -> datetime:
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc


def load_ca(cert_pem: bytes, key_pem: bytes) -> Issued:
    """A CA from files: checks that the key is the certificate's and that it may sign."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as error:
        raise PkiError(f"cannot read the CA: {error}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiError("the CA key is neither EC nor RSA")
    if _spki(key.public_key()) != _spki(cert.public_key()):
        raise PkiError("the CA key does not belong to the CA certificate")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise PkiError("the CA certificate is not a CA (basicConstraints CA:FALSE or absent)")
    return Issued(cert_pem, key_pem)


# ---- building ---------------------------------------------------------------------------


def _issue(
    ca: Issued,
    common_name: str,
    days: int,
    usage: x509.ObjectIdentifier,
    alternative: x509.SubjectAlternativeName | None,
) -> Issued:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(_name(common_name), ca_cert.subject, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if alternative is not None:
        builder = builder.add_extension(alternative, critical=False)
    certificate = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    return Issued(_pem(certificate), _key_pem(key))


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, days: int
) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=days))
    )


def _name(common_name: str) -> x509.Name:
    if not common_name or len(common_name) > 64:
        raise PkiError(f"a common name is 1-64 characters, not {len(common_name)}")
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
