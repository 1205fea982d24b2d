"""What roles/openbao reads back from the current host: OpenBao's version and seal state, from its API."""

from __future__ import annotations

from pyinfra import host

from gpuaas.profile import Host, Profile
from roles.openbao.config import client
from roles.openbao.facts import BaoStatus


def read_back(profile: Profile, node: Host) -> dict | None:
    found = host.get_fact(BaoStatus, client_command=client(profile.services.openbao, node, "status"))
    if not found:
        return {"version": None, "status": "failed", "message": "the API does not answer"}
    if not found.get("initialized") or found.get("sealed"):
        state = "not initialized" if not found.get("initialized") else "sealed"
        return {**found, "status": "failed", "message": f"OpenBao {found.get('version')} is {state}"}
    return {**found, "status": "ok", "message": f"OpenBao {found.get('version')}, initialized and unsealed"}
