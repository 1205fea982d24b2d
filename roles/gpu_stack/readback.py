"""What roles/gpu_stack reads back from the cluster (on the first server): the provider, and per GPU
node the `nvidia.com/gpu` it can allocate against the count its profile entry declares."""

from __future__ import annotations

from pyinfra import host

from gpuaas.evidence.packet import worst
from gpuaas.profile import Host, Profile
from roles.gpu_stack.config import gpu_hosts, settings_of
from roles.gpu_stack.facts import GPU_RESOURCE, AllocatableGpus
from roles.rke2.config import first_server


def read_back(profile: Profile, node: Host) -> dict | None:
    if node != first_server(profile):
        return None
    settings = settings_of(profile)
    allocatable = host.get_fact(AllocatableGpus)
    nodes = {}
    for gpu_node in gpu_hosts(profile):
        count = allocatable.get(gpu_node.name)
        if count is None:
            status, message = "failed", "not a node of the cluster"
        elif count == gpu_node.gpu.count:
            status, message = "ok", f"{count} {GPU_RESOURCE} allocatable"
        else:
            status, message = "drift", f"{count} {GPU_RESOURCE} allocatable; the profile declares {gpu_node.gpu.count}"
        nodes[gpu_node.name] = {"allocatable": count, "status": status, "message": message}
    statuses = [entry["status"] for entry in nodes.values()]
    status = worst(statuses).value
    message = "; ".join(f"{name}: {entry['message']}" for name, entry in nodes.items()) or "no GPU node declared"
    return {"provider": settings.provider, "nodes": nodes, "status": status, "message": message}
