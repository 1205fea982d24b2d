"""What roles/rke2 reads back from the current host: the installed RKE2 version beside the pin and, on a
server, the API's readiness and every cluster host's node readiness."""

from __future__ import annotations

from pyinfra import host

from gpuaas.evidence.packet import worst
from gpuaas.groups import CLUSTER
from gpuaas.profile import Host, Profile
from roles.rke2.config import KUBECONFIG, KUBECTL, PROGRAM, is_server
from roles.rke2.facts import ApiReady, Nodes, Rke2Version


def read_back(profile: Profile, node: Host) -> dict | None:
    pinned = profile.artifacts[profile.role_settings("rke2", node).artifact].version
    version = host.get_fact(Rke2Version, program=PROGRAM)
    found: dict = {"version": version, "pinned": pinned}
    problems = []
    if version is None:
        problems.append(("failed", "rke2 is not installed"))
    elif version.lstrip("v") != pinned.lstrip("v"):
        problems.append(("drift", f"rke2 {version} is installed; the profile pins {pinned}"))
    if is_server(node):
        found["api_ready"] = host.get_fact(ApiReady, kubectl=KUBECTL, kubeconfig=KUBECONFIG)
        nodes = host.get_fact(Nodes, kubectl=KUBECTL, kubeconfig=KUBECONFIG)
        found["nodes"] = nodes
        if not found["api_ready"]:
            problems.append(("failed", "the API server is not ready"))
        cluster = [h.name for h in profile.hosts if set(CLUSTER) & set(h.groups)]
        not_ready = [name for name in cluster if not nodes.get(name, {}).get("ready")]
        if found["api_ready"] and not_ready:
            problems.append(("failed", f"nodes not ready: {', '.join(not_ready)}"))
    if problems:
        return {**found, "status": worst(s for s, _ in problems).value, "message": "; ".join(m for _, m in problems)}
    ready = ", every node ready" if is_server(node) else ""
    return {**found, "status": "ok", "message": f"rke2 {version}{ready}"}
