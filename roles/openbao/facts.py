"""Facts roles/openbao reads back: the server's seal status and version, and its TLS certificate."""

from __future__ import annotations

import json
import re

from pyinfra.api import FactBase


class BaoStatus(FactBase):
    """`bao status` of the host's server: {"version", "initialized", "sealed", "storage_type", "ha_enabled",
    "shares", "threshold"}; None when it does not answer."""

    def command(self, client_command: str) -> str:
        # Exit code 2 means sealed, which is an answer like any other.
        return f"{client_command} -format=json 2>/dev/null || true"

    def process(self, output: list[str]) -> dict | None:
        try:
            status = json.loads("\n".join(output))
        except ValueError:
            return None
        return {"version": status.get("version"), "initialized": status.get("initialized"),
                "sealed": status.get("sealed"), "storage_type": status.get("storage_type"),
                "ha_enabled": status.get("ha_enabled"), "shares": status.get("n"),
                "threshold": status.get("t")}  # fmt: skip


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
