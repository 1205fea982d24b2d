"""Facts roles/temporal reads back: cluster health and server version, namespaces, schema versions."""

from __future__ import annotations

import json
import shlex

from pyinfra.api import FactBase


def _json_documents(output: list[str]) -> list | None:
    decoder, text, documents = json.JSONDecoder(), "\n".join(output).strip(), []
    while text:
        try:
            document, end = decoder.raw_decode(text)
        except ValueError:
            return None
        documents.append(document)
        text = text[end:].strip()
    return documents


class TemporalCluster(FactBase):
    """{"health": "SERVING", "server_version": "1.32.0"} from the running service, or None."""

    def command(self, program: str, address: str) -> str:
        options = f"--address {address} -o json"
        return f"{program} operator cluster health {options} && {program} operator cluster system {options} || true"

    def process(self, output: list[str]) -> dict | None:
        documents = _json_documents(output)
        if not documents or len(documents) != 2:
            return None
        health, system = documents
        return {"health": health.get("status"), "server_version": system.get("serverVersion")}


class TemporalNamespaces(FactBase):
    """The names of the cluster's registered namespaces ([] when it does not answer)."""

    default = list

    def command(self, program: str, address: str) -> str:
        return f"{program} operator namespace list --address {address} -o json 2>/dev/null || true"

    def process(self, output: list[str]) -> list[str]:
        documents = _json_documents(output) or []
        entries = [item for document in documents for item in (document if isinstance(document, list) else [document])]
        return sorted(entry.get("namespaceInfo", {}).get("name", "") for entry in entries if isinstance(entry, dict))


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.lstrip("v").split("."))


class TemporalSchema(FactBase):
    """{"current": "1.14" or None (no schema yet), "available": "1.14" or None} of one database:
    the version temporal-sql-tool recorded in it, and the newest in the versioned schema directory."""

    def command(self, database: str, versioned_dir: str) -> str:
        # `database` is an identifier (a-z, 0-9, '_'): it is inert inside the SQL string literal too.
        query = shlex.quote(f"SELECT curr_version FROM schema_version WHERE db_name = '{database}'")
        return (
            f"echo current=$(runuser -u postgres -- psql -XAtq -d {shlex.quote(database)} -c {query} "
            f"2>/dev/null); echo available=$(ls {shlex.quote(versioned_dir)} 2>/dev/null "
            "| tr '\\n' ' ')"
        )

    def process(self, output: list[str]) -> dict:
        values = dict(line.split("=", 1) for line in output if "=" in line)
        versions = [name for name in values.get("available", "").split() if name.startswith("v")]
        return {
            "current": values.get("current", "").strip() or None,
            "available": max(versions, key=_version_key).lstrip("v") if versions else None,
        }
