"""Rolling upgrade of roles/rke2 to the profile's pinned version: the plan (who goes in which batch)
and the per-batch steps deploys/upgrade.py runs."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from pyinfra import state
from pyinfra.api.exceptions import DeployError
from pyinfra.operations import server

from gpuaas.groups import RKE2_AGENTS, RKE2_SERVERS
from gpuaas.inventory import pyinfra_name
from gpuaas.profile import REPO_ROOT, Profile
from roles.rke2.checks import all_ready, kubectl, node_ready, wait
from roles.rke2.config import KUBECONFIG, KUBECTL, PROGRAM, first_server
from roles.rke2.facts import Nodes
from roles.rke2.settings import Rke2Settings

#: Set to `yes` to let an upgrade install a version older than the one running.
ALLOW_DOWNGRADE_ENV = "GPUAAS_ALLOW_DOWNGRADE"


def version_key(version: str) -> tuple[int, ...]:
    """`v1.30.4+rke2r1` -> (1, 30, 4, 1): comparable release order."""
    numbers = [int(n) for n in re.findall(r"\d+", version)]
    return tuple(numbers or [0])


@dataclass(frozen=True)
class Batch:
    """Nodes upgraded together: one server, or up to `reserve` agents of one ring."""

    label: str
    nodes: tuple[str, ...]


def plan(
    profile: Profile, running: dict[str, str], target: str, allow_downgrade: bool = False, what: str = "RKE2"
) -> list[Batch]:
    """The batches that bring every node below `target` to it: servers one at a time (the first server
    first), then agents ring by ring (ring 0 first, nodes without a ring last), at most
    `rollout.reserve` at once. Nodes already at the target are left out, so a re-run resumes where a
    stopped rollout ended. Raises DeployError for a downgrade unless it is allowed."""
    newer = sorted(name for name, version in running.items() if version_key(version) > version_key(target))
    if newer and not allow_downgrade:
        raise DeployError(
            f"{profile.name}: {', '.join(newer)} run a newer {what} than the pinned {target}; refusing to downgrade "
            f"(set {ALLOW_DOWNGRADE_ENV}=yes to allow it)"
        )
    due = [h for h in profile.hosts if h.name in running and running[h.name] != target]
    servers = [h for h in due if RKE2_SERVERS in h.groups]
    batches = [Batch(f"server {h.name}", (h.name,)) for h in servers]
    agents = [h for h in due if RKE2_AGENTS in h.groups and h not in servers]
    for ring in sorted({h.ring for h in agents}, key=lambda r: (r is None, r)):
        members = [h.name for h in agents if h.ring == ring]
        label = f"ring {ring}" if ring is not None else "agents"
        size = profile.rollout.reserve
        batches += [Batch(label, tuple(members[i : i + size])) for i in range(0, len(members), size)]
    return batches


def running_versions(profile: Profile) -> dict[str, str]:
    """Node name -> kubelet version, as the first server's API reports them (read while planning)."""
    first = first_server(profile)
    server_host = state.inventory.get_host(pyinfra_name(profile, first))
    nodes = server_host.get_fact(Nodes, kubectl=KUBECTL, kubeconfig=KUBECONFIG)
    if not nodes:
        raise DeployError(f"{profile.name}: no cluster answers on {first.name}: bring it up with deploys/cluster.py")
    return {name: info["version"] for name, info in nodes.items()}


_PLANS: dict[tuple[str, str, str, bool], list[Batch]] = {}


def recorded_plan(
    profile: Profile,
    running: Callable[[], dict[str, str]],
    target: str,
    allow_downgrade: bool,
    what: str = "RKE2",
    record: str = "upgrade-plan.json",
) -> list[Batch]:
    """plan()'s batches over the versions `running()` reads, worked out once per run and written to
    build/ENV/`record` (what runs what, before and after) for the operator's record."""
    key = (profile.name, what, target, allow_downgrade)
    if key not in _PLANS:
        versions = running()
        batches = plan(profile, versions, target, allow_downgrade, what)
        document = {
            "environment": profile.name,
            "target": target,
            "running": versions,
            "batches": [{"label": b.label, "nodes": list(b.nodes)} for b in batches],
        }
        path = REPO_ROOT / "build" / profile.name / record
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2) + "\n")
        _PLANS[key] = batches
    return _PLANS[key]


def rollout_plan(profile: Profile, target: str | None, allow_downgrade: bool) -> list[Batch]:
    """The RKE2 rollout's batches, from the versions the nodes' kubelets run (recorded_plan)."""
    if target is None:
        raise DeployError(f"{profile.source}: artifacts.rke2: not pinned; pin the release to upgrade to")
    return recorded_plan(profile, lambda: running_versions(profile), target, allow_downgrade)


def snapshot(target: str) -> None:
    """An etcd snapshot on the first server before anything changes."""
    name = "pre-upgrade-" + re.sub(r"[^a-z0-9-]", "-", target.lower())
    server.shell(
        name=f"Take etcd snapshot {name}", commands=[f"{PROGRAM} etcd-snapshot save --name {shlex.quote(name)}"]
    )


def drain(batch: Batch, settings: Rke2Settings) -> None:
    """Cordon and drain the batch's nodes from the first server; a drain that cannot finish in time
    (PodDisruptionBudgets) stops the rollout, or with `drain_fallback: continue` is reported and the
    node stays cordoned."""
    for node in batch.nodes:
        name = shlex.quote(node)
        drain_command = kubectl(
            f"drain {name} --ignore-daemonsets --delete-emptydir-data --timeout={int(settings.drain_timeout)}s"
        )
        report = f"drain of {node} did not finish in {settings.drain_timeout}s; upgrading it cordoned"
        fallback = f"echo {shlex.quote(report)} >&2" if settings.drain_fallback == "continue" else "exit 1"
        cordon = kubectl(f"cordon {name}")
        server.shell(
            name=f"Cordon and drain {node}", commands=[f"{cordon} && {{ {drain_command} || {{ {fallback} ; }} ; }}"]
        )


def readmit(batch: Batch, target: str | None, settings: Rke2Settings, everyone: list[str]) -> None:
    """Wait (bounded) until the batch's nodes are Ready (at the target RKE2 version, when given),
    uncordon them, then check the whole cluster is Ready before the next batch."""
    seconds = settings.ready_timeout
    at = f" at {target}" if target else ""
    for node in batch.nodes:
        failure = f"{node} not Ready{at} after {seconds}s: the rollout stops here"
        server.shell(
            name=f"Wait for {node} to be Ready{at}, then uncordon it",
            commands=[wait(node_ready(node, target), seconds, failure), kubectl(f"uncordon {shlex.quote(node)}")],
        )
    server.shell(
        name=f"Health gate after {batch.label}: every node Ready",
        commands=[
            wait(all_ready(everyone), seconds, f"not every node is Ready after {batch.label}: the rollout stops")
        ],
    )
