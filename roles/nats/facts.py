"""Facts roles/nats reads back: the running server's version and readiness."""

from __future__ import annotations

import json

from pyinfra.api import FactBase


class NatsVarz(FactBase):
    """The server's /varz (version, JetStream state) and /healthz answer; None when it does not answer."""

    def command(self, address: str, monitor_port: int) -> str:
        base = f"http://{address}:{monitor_port}"
        return f"curl -fsS --max-time 5 {base}/varz && echo && curl -sS --max-time 5 {base}/healthz || true"

    def process(self, output: list[str]) -> dict | None:
        text = "\n".join(output).strip()
        if not text.startswith("{"):
            return None
        varz_text, _, health_text = text.rpartition("\n")
        try:
            varz = json.loads(varz_text)
            health = json.loads(health_text)
        except ValueError:
            return None
        return {
            "version": varz.get("version"),
            "jetstream": bool(varz.get("jetstream")),
            "healthy": health.get("status") == "ok",
        }
