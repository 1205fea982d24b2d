"""Facts roles/gpu_stack reads from the cluster through a server's kubectl: what each node advertises."""

from __future__ import annotations

import json

from pyinfra.api import FactBase

from roles.rke2.checks import kubectl

GPU_RESOURCE = "nvidia.com/gpu"


def allocatable_gpus(nodes_json: str) -> dict[str, int]:
    """Node name -> the `nvidia.com/gpu` it can allocate (0 where it advertises none), from `kubectl get
    nodes -o json`."""
    try:
        items = json.loads(nodes_json).get("items", [])
    except ValueError:
        return {}
    found = {}
    for item in items:
        allocatable = item.get("status", {}).get("allocatable", {})
        found[item["metadata"]["name"]] = int(allocatable.get(GPU_RESOURCE, "0") or 0)
    return found


class AllocatableGpus(FactBase):
    """Node name -> allocatable `nvidia.com/gpu`, as the API reports it; empty when no cluster answers."""

    default = dict

    def command(self) -> str:
        return f"{kubectl('get nodes -o json')} 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, int]:
        return allocatable_gpus("\n".join(output))
