"""Everything roles/gpu_stack keeps on the servers, declared once (see gpuaas.managed): the provider's
HelmChart in RKE2's manifests directory (the servers apply it themselves), the chart archive in the
static charts directory for air-gapped sites, no manifest of the other provider, and (first server) the
label that tells the GPU Operator which nodes' drivers are the hosts' own."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from pyinfra.api.operation import OperationMeta
from pyinfra.operations import server

from gpuaas import artifacts
from gpuaas.managed import Applied, Content, Item, Upload, live_drift
from gpuaas.probe import Probe
from gpuaas.profile import Host, Profile
from roles.gpu_stack.config import (
    DRIVER_DEPLOY_LABEL,
    HEADER,
    MANIFEST_FILES,
    STATIC_CHARTS,
    chart_archive_name,
    driver_labels,
    manifests,
    settings_of,
)
from roles.rke2.checks import kubectl
from roles.rke2.config import first_server
from roles.rke2.operations import manifest_withdrawn


@dataclass(eq=False)
class NoOtherManifest:
    """No manifest of the role's other provider (its header first) in the manifests directory: a provider
    change takes the old one back, with what it created in the cluster."""

    wanted: frozenset[str]

    @property
    def name(self) -> str:
        return "no withdrawn gpu_stack manifest"

    def probes(self) -> list[Probe]:
        header = shlex.quote(HEADER.strip())
        command = (
            f"for f in {' '.join(MANIFEST_FILES)}; do "
            f'[ -f "$f" ] && [ "$(head -n 1 "$f")" = {header} ] && echo "$f"; done; true'
        )
        return [Probe(self.name, command, " ".join(p for p in MANIFEST_FILES if p in self.wanted))]

    def apply(self, applied: Applied) -> list[OperationMeta]:
        stale = [path for path in MANIFEST_FILES if path not in self.wanted]
        return [
            manifest_withdrawn(name=f"Ensure manifest {path.rsplit('/', 1)[1]} and what it created are gone", path=path)
            for path in stale
        ]


@dataclass(eq=False)
class DriverOwnerLabels:
    """Each GPU node labelled with who owns its driver (DRIVER_DEPLOY_LABEL: `false` keeps the GPU
    Operator's driver container off a node whose host installs its own). Set through the API, not RKE2's
    node-label option, which only applies when a node registers."""

    labels: dict[str, str]

    @property
    def name(self) -> str:
        return f"node label {DRIVER_DEPLOY_LABEL}"

    def probes(self) -> list[Probe]:
        key = DRIVER_DEPLOY_LABEL.replace(".", "\\.")
        listing = kubectl(
            f"get nodes -o jsonpath='{{range .items[*]}}{{.metadata.name}}={{.metadata.labels.{key}}} {{end}}'"
        )
        names = "|".join(shlex.quote(n) for n in sorted(self.labels))
        # Only the GPU nodes, in name order.
        command = f'for n in $({listing} 2>/dev/null); do case "${{n%%=*}}" in {names}) echo "$n";; esac; done | sort'
        return [Probe(self.name, command, " ".join(f"{n}={v}" for n, v in sorted(self.labels.items())))]

    def apply(self, applied: Applied) -> OperationMeta:
        commands = [
            kubectl(f"label node {shlex.quote(node)} {DRIVER_DEPLOY_LABEL}={value} --overwrite")
            for node, value in sorted(self.labels.items())
        ]
        return server.shell(
            name=f"Ensure each GPU node's {DRIVER_DEPLOY_LABEL} label names its driver's owner",
            commands=commands,
            _if=lambda: live_drift(self),
        )


def chart_archive(profile: Profile) -> list[Item]:
    """The pinned chart archive where the servers serve it, when the provider's chart comes from one."""
    settings = settings_of(profile)
    charts = {
        "operator": ("gpu-operator", settings.operator.chart),
        "device-plugin": ("nvidia-device-plugin", settings.device_plugin.chart),
    }
    name, chart = charts.get(settings.provider, (None, None))
    if chart is None or chart.archive is None:
        return []
    local = artifacts.verified(chart.archive, profile.artifacts[chart.archive])
    path = f"{STATIC_CHARTS}/{chart_archive_name(name, chart)}"
    return [
        Upload(path, local, profile.artifacts[chart.archive].sha256, "644", what=f"the {name} chart {chart.version}")
    ]


def desired(profile: Profile, node: Host) -> list[Item]:
    """Every item of the role on the server `node`."""
    rendered = manifests(profile)
    items: list[Item] = [*chart_archive(profile)]
    items += [
        Content(
            path, text, "600", operation=f"Ensure manifest {path.rsplit('/', 1)[1]} is in place", create_remote_dir=True
        )
        for path, text in rendered.items()
    ]
    items.append(NoOtherManifest(frozenset(rendered)))
    labels = driver_labels(profile)
    if labels and node == first_server(profile):
        items.append(DriverOwnerLabels(labels))
    return items
