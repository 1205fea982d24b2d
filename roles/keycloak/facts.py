"""Facts roles/keycloak reads back: the installed version and readiness on the management port."""

from __future__ import annotations

import json

from pyinfra.api import FactBase


class KeycloakReadiness(FactBase):
    """{"version": "26.0.7", "ready": True} from `version.txt` and /health/ready; None without Keycloak."""

    def command(self, home: str, address: str, management_port: int) -> str:
        return (
            f"test -r {home}/version.txt || exit 0; cat {home}/version.txt; "
            f"curl -sS --max-time 5 http://{address}:{management_port}/health/ready || true"
        )

    def process(self, output: list[str]) -> dict | None:
        if not output:
            return None
        version = output[0].rsplit(" ", 1)[-1]
        try:
            health = json.loads("\n".join(output[1:]))
        except ValueError:
            health = {}
        return {"version": version, "ready": health.get("status") == "UP"}
