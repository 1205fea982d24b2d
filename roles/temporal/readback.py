"""What roles/temporal reads back from the current host: Temporal's health and server version from its
frontend, the namespaces it keeps registered and, in server mode, each store's schema version."""

from __future__ import annotations

from pyinfra import host

from gpuaas.evidence.packet import worst
from gpuaas.profile import Host, Profile
from roles.temporal.config import PROGRAM_LINK, settings_for, stores, versioned_dir
from roles.temporal.facts import TemporalCluster, TemporalNamespaces, TemporalSchema


def read_back(profile: Profile, node: Host) -> dict | None:
    settings = settings_for(profile)
    address = f"{node.address}:{settings.port}"
    found = host.get_fact(TemporalCluster, program=PROGRAM_LINK, address=address) or {}
    namespaces = host.get_fact(TemporalNamespaces, program=PROGRAM_LINK, address=address)
    found = {**found, "mode": settings.mode, "namespaces": namespaces}
    problems = []
    if found.get("health") != "SERVING":
        problems.append(("failed", "the frontend is not serving"))
    missing = [name for name in settings.namespaces if name not in namespaces]
    if missing and not problems:
        problems.append(("drift", f"namespaces missing: {', '.join(missing)}"))
    if settings.mode == "server":
        found["schema"] = {
            database: host.get_fact(TemporalSchema, database=database, versioned_dir=versioned_dir(profile, store))
            for store, database in stores(settings).items()
        }
        behind = [
            db
            for db, schema in found["schema"].items()
            if not schema["current"] or schema["current"] != schema["available"]
        ]
        if behind:
            problems.append(("drift", f"schema not current in {', '.join(behind)}"))
    if problems:
        return {**found, "status": worst(s for s, _ in problems).value, "message": "; ".join(m for _, m in problems)}
    schema = "schema current" if settings.mode == "server" else "dev server"
    message = f"Temporal {found.get('server_version')} ({schema}), namespaces {', '.join(settings.namespaces)}"
    return {**found, "status": "ok", "message": message}
