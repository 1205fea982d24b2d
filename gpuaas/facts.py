"""Facts more than one role reads."""

from __future__ import annotations

import re

from pyinfra.api import FactBase


class CertificateNames(FactBase):
    """The subject alternative names of a PEM certificate and whether it is still valid `days` from now:
    {"names": [...], "valid": bool}; None when there is no readable certificate."""

    def command(self, path: str, days: int) -> str:
        return (
            f"test -r {path} || exit 0; openssl x509 -in {path} -noout -ext subjectAltName 2>/dev/null; "
            f"openssl x509 -in {path} -noout -checkend {days * 86400} >/dev/null 2>&1 && echo VALID || echo EXPIRING"
        )

    def process(self, output: list[str]) -> dict | None:
        if not output:
            return None
        names = [name.strip() for line in output[:-1] if not line.startswith("X509v3")
                 for name in line.split(",") if name.strip()]  # fmt: skip
        return {"names": sorted(re.sub(r"\s+", " ", name) for name in names), "valid": output[-1] == "VALID"}
