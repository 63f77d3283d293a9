"""TLS contexts shared by implicit-TLS listeners and STARTTLS/STLS.

* Certificates come from the configured PEM files (``tls.certificate`` and
  ``tls.private_key``; the certificate file may carry the chain after the
  leaf).  With none configured, a self-signed certificate for the hostname is
  generated into ``<data>/tls/`` on first start (key mode 0600) and reused.
* Contexts are built by Twisted's ``CertificateOptions`` with TLS 1.2 as
  the minimum (``tls.minimum_version = "1.3"`` raises it).
* :meth:`TLSContexts.reload` (SIGHUP) re-reads the files; connections that
  are open keep their session, new handshakes use the new certificate.  A
  reload that fails is logged and the old certificate stays in use.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import crypto
from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.logger import Logger
from zope.interface import implementer

from mailsuite.config import TLSConfig
from mailsuite.errors import ConfigError

log = Logger()


def generate_self_signed(hostname: str, cert_path: Path, key_path: Path) -> None:
    """Write a self-signed ECDSA P-256 certificate for ``hostname`` (10 years).

    The key is created with mode 0600 before any byte is written; both files
    are written to a temporary name and renamed into place.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(key_path, key_pem, 0o600)
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _write_private(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def load_options(cert_file: Path, key_file: Path, minimum: str = "1.2") -> ssl.CertificateOptions:
    """CertificateOptions from PEM files; raises :class:`ConfigError` naming the file."""
    try:
        cert_data = cert_file.read_bytes()
    except OSError as e:
        raise ConfigError(f"{cert_file}: cannot read certificate: {e.strerror}")
    try:
        key_data = key_file.read_bytes()
    except OSError as e:
        raise ConfigError(f"{key_file}: cannot read private key: {e.strerror}")
    try:
        chain = x509.load_pem_x509_certificates(cert_data)
        key = crypto.load_privatekey(crypto.FILETYPE_PEM, key_data)
    except Exception:
        raise ConfigError(f"{cert_file} / {key_file}: not a PEM certificate and private key")
    certs = [crypto.X509.from_cryptography(c) for c in chain]
    minimum_version = ssl.TLSVersion.TLSv1_3 if minimum == "1.3" else ssl.TLSVersion.TLSv1_2
    return ssl.CertificateOptions(
        privateKey=key,
        certificate=certs[0],
        extraCertChain=certs[1:] or None,
        raiseMinimumTo=minimum_version,
    )


@implementer(IOpenSSLServerConnectionCreator)
class TLSContexts:
    """The server's TLS configuration; itself an ``IOpenSSLServerConnectionCreator``
    so implicit-TLS listeners built once keep following :meth:`reload`."""

    def __init__(self, config: TLSConfig, hostname: str, data_dir: Path) -> None:
        if bool(config.certificate) != bool(config.private_key):
            raise ConfigError(
                "tls.certificate and tls.private_key: set both, or neither for a self-signed one"
            )
        self.config = config
        if config.certificate:
            self.cert_file = Path(config.certificate)
            self.key_file = Path(config.private_key)
        else:
            self.cert_file = data_dir / "tls" / "selfsigned.crt"
            self.key_file = data_dir / "tls" / "selfsigned.key"
            if not (self.cert_file.exists() and self.key_file.exists()):
                log.info("generating a self-signed certificate for {host}", host=hostname)
                generate_self_signed(hostname, self.cert_file, self.key_file)
        self._options = load_options(self.cert_file, self.key_file, config.minimum_version)

    def server_options(self) -> TLSContexts:
        """What ``transport.startTLS`` and ``TLSMemoryBIOFactory`` take."""
        return self

    def serverConnectionForTLS(self, tlsProtocol: Any) -> Any:
        return self._options.serverConnectionForTLS(tlsProtocol)

    def reload(self) -> bool:
        """Re-read the certificate files; True on success (failure is logged)."""
        try:
            self._options = load_options(
                self.cert_file, self.key_file, self.config.minimum_version
            )
        except ConfigError as e:
            log.error("TLS reload failed, keeping the old certificate: {err}", err=str(e))
            return False
        log.info("TLS certificate reloaded from {cert}", cert=str(self.cert_file))
        return True
