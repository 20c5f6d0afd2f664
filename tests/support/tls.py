"""A private CA and a server certificate for 127.0.0.1 and localhost, issued with ``trustme``."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

__all__ = ["Certificates"]


@dataclass
class Certificates:
    """A private CA and a server certificate for 127.0.0.1 and localhost, also as PEM files."""

    ca: trustme.CA
    server_cert: trustme.LeafCert
    ca_path: Path
    cert_path: Path
    key_path: Path

    @classmethod
    def issue(cls, directory: Path) -> Certificates:
        """Issue certificates from a throwaway CA; write them in ``directory``."""
        ca = trustme.CA()
        server_cert = ca.issue_cert("127.0.0.1", "localhost")
        ca_path = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_path))
        cert_path = directory / "cert.pem"
        server_cert.cert_chain_pems[0].write_to_path(str(cert_path))
        key_path = directory / "key.pem"
        server_cert.private_key_pem.write_to_path(str(key_path))
        return cls(ca, server_cert, ca_path, cert_path, key_path)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(context)
        return context
