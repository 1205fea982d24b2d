"""The CUDA sample pod: on each GPU node, a pod that asks for one `nvidia.com/gpu` and runs NVIDIA's
vectorAdd sample; run from the first server when the operator asks for it (GPUAAS_GPU_SAMPLE=yes with
deploys/gpu.py), waited for until it completes, its log kept in the run's output, then deleted."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from pyinfra.operations import server

from gpuaas.profile import Profile
from roles.gpu_stack.config import gpu_hosts, rke2_version, settings_of
from roles.gpu_stack.facts import GPU_RESOURCE
from roles.gpu_stack.runtime import wiring
from roles.rke2.checks import kubectl

SAMPLE_ENV = "GPUAAS_GPU_SAMPLE"
NAMESPACE = "default"


def pod_name(node: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", f"gpuaas-cuda-sample-{node}".lower())[:63].rstrip("-")


def sample_pod(node: str, image: str, runtime_class: bool) -> dict[str, Any]:
    """The pod on `node`: one GPU, no restart, the `nvidia` runtime class where the toolkit's wiring needs it."""
    spec: dict[str, Any] = {
        "nodeName": node,
        "restartPolicy": "Never",
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [{"name": "cuda-sample", "image": image, "resources": {"limits": {GPU_RESOURCE: 1}}}],
    }
    if runtime_class:
        spec["runtimeClassName"] = "nvidia"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod_name(node), "namespace": NAMESPACE, "labels": {"app.kubernetes.io/part-of": "gpuaas"}},
        "spec": spec,
    }


def run_samples(profile: Profile, timeout: int = 300) -> None:
    """Run the sample on every GPU node, one after another, and fail the run when one does not complete."""
    settings = settings_of(profile)
    needs_class = (
        settings.provider != "operator" or wiring(settings.operator.chart.version, rke2_version(profile)).runtime_class
    )
    for node in gpu_hosts(profile):
        pod = sample_pod(node.name, settings.sample_image, needs_class)
        name = shlex.quote(pod["metadata"]["name"])
        manifest = shlex.quote(json.dumps(pod))
        succeeded = shlex.quote("jsonpath={.status.phase}=Succeeded")
        server.shell(
            name=f"Run the CUDA sample on {node.name}",
            commands=[
                f"{kubectl(f'-n {NAMESPACE} delete pod {name} --ignore-not-found')} >/dev/null",
                f"echo {manifest} | {kubectl('apply -f -')}",
                f"{kubectl(f'-n {NAMESPACE} wait --for={succeeded} pod/{name} --timeout={timeout}s')} "
                f"|| {{ {kubectl(f'-n {NAMESPACE} describe pod {name}')} >&2; "
                f"{kubectl(f'-n {NAMESPACE} logs {name}')} >&2; exit 1; }}",
                kubectl(f"-n {NAMESPACE} logs {name}"),
                kubectl(f"-n {NAMESPACE} delete pod {name} --wait=false"),
            ],
        )
