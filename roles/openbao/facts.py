"""Facts roles/openbao reads back: the server's seal status and version, and its TLS certificate."""

from __future__ import annotations

import json

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
        return {
            "version": status.get("version"),
            "initialized": status.get("initialized"),
            "sealed": status.get("sealed"),
            "storage_type": status.get("storage_type"),
            "ha_enabled": status.get("ha_enabled"),
            "shares": status.get("n"),
            "threshold": status.get("t"),
        }
