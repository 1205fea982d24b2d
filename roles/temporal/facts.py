"""Facts roles/temporal reads back: cluster health and the server version."""

from __future__ import annotations

import json

from pyinfra.api import FactBase


class TemporalCluster(FactBase):
    """{"health": "SERVING", "server_version": "1.32.0"} from the running service, or None."""

    def command(self, program: str, address: str) -> str:
        options = f"--address {address} -o json"
        return f"{program} operator cluster health {options} && {program} operator cluster system {options} || true"

    def process(self, output: list[str]) -> dict | None:
        decoder, text, documents = json.JSONDecoder(), "\n".join(output).strip(), []
        while text:
            try:
                document, end = decoder.raw_decode(text)
            except ValueError:
                return None
            documents.append(document)
            text = text[end:].strip()
        if len(documents) != 2:
            return None
        health, system = documents
        return {"health": health.get("status"), "server_version": system.get("serverVersion")}
