"""The lane's hosts: one systemd container per profile host, at its profile address on a Docker network
of the profile's `node_cidr`, started with the flags that run systemd as PID 1 without --privileged."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass

from gpuaas.lane import LaneError, access, run
from gpuaas.lane.image import ensure_image
from gpuaas.lane.machine import engine_running, setup
from gpuaas.profile import Host, Profile

BOOT_SECONDS = 90

# The flags measured to run systemd as PID 1 on these machines (CAP_SYS_RESOURCE is not in the
# bounding set, so --privileged fails); /proc/sys is writable so that the common role can apply
# its network sysctls, which are per network namespace.
SYSTEMD_RUN_FLAGS = (
    "--cap-add",
    "ALL",
    "--cap-drop",
    "SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    "--security-opt",
    "systempaths=unconfined",
    "--cgroupns=host",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs",
    "/run",
    "--tmpfs",
    "/run/lock",
)


@dataclass(frozen=True)
class Container:
    name: str
    state: str
    address: str


def network_name(profile: Profile) -> str:
    """One Docker network per environment and subnet, so lanes with other subnets never collide."""
    cidr = profile.network.node_cidr
    return f"gpuaas-{profile.name}-{cidr.network_address}-{cidr.prefixlen}"


def ensure_network(profile: Profile) -> str:
    name = network_name(profile)
    if run("docker", "network", "inspect", name, check=False).returncode != 0:
        run("docker", "network", "create", "--label", f"gpuaas.env={profile.name}",
            "--subnet", str(profile.network.node_cidr), name)  # fmt: skip
    return name


def _container_state(name: str) -> str | None:
    result = run("docker", "inspect", "-f", "{{.State.Status}}", name, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def _start_host(profile: Profile, node: Host, image: str, network: str) -> None:
    state = _container_state(node.name)
    if state == "running":
        return
    if state is not None:
        run("docker", "start", node.name)
        return
    run("docker", "run", "-d", "--name", node.name, "--hostname", node.name, "--label", f"gpuaas.env={profile.name}",
        "--network", network, "--ip", str(node.address), *SYSTEMD_RUN_FLAGS, image)  # fmt: skip


def wait_booted(names: list[str], timeout: float = BOOT_SECONDS) -> None:
    """Wait until systemd in every container reports running (or degraded: booted, a unit failed)."""
    pending = list(names)
    deadline = time.monotonic() + timeout
    while pending:
        for name in list(pending):
            state = run("docker", "exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                pending.remove(name)
        if pending and time.monotonic() > deadline:
            raise LaneError(f"systemd did not finish booting in {', '.join(pending)} within {timeout:.0f}s")
        if pending:
            time.sleep(0.5)


def up(profile: Profile, log=print) -> list[Container]:
    """Create (or start) every host of the profile as a systemd container and, for an SSH connection,
    give it the operator account and record its host keys; idempotent."""
    if profile.lane is None:
        raise LaneError(
            f"profile '{profile.name}' has no `lane:` entry: the local lane runs only profiles whose hosts are "
            f"containers on this machine (inventories/local.yml, or `gpuaas local up --shape {profile.name}`)"
        )
    setup(log)
    image = ensure_image(log)
    network = ensure_network(profile)
    for node in profile.hosts:
        _start_host(profile, node, image, network)
    wait_booted([node.name for node in profile.hosts])
    if profile.connection.kind == "ssh":
        access.provision(profile)
    return containers(profile)


def running_names(profile: Profile) -> set[str]:
    """Names of the profile's containers that are running (one docker call for all of them)."""
    if shutil.which("docker") is None:
        return set()
    result = run("docker", "ps", "--filter", f"label=gpuaas.env={profile.name}", "--format", "{{.Names}}",
                 check=False)  # fmt: skip
    return set(result.stdout.split()) if result.returncode == 0 else set()


def containers(profile: Profile) -> list[Container]:
    if not engine_running():
        return []
    result = run("docker", "ps", "-a", "--filter", f"label=gpuaas.env={profile.name}",
                 "--format", "{{.Names}}\t{{.State}}", check=False)  # fmt: skip
    found = dict(line.split("\t") for line in result.stdout.splitlines() if "\t" in line)
    return [Container(node.name, found[node.name], str(node.address)) for node in profile.hosts if node.name in found]


def down(profile: Profile) -> list[str]:
    """Remove the profile's containers and network, and forget their host keys; returns the names removed."""
    if not engine_running():
        return []
    removed = [c.name for c in containers(profile)]
    if removed:
        run("docker", "rm", "-f", "-v", *removed)
    if run("docker", "network", "inspect", network_name(profile), check=False).returncode == 0:
        run("docker", "network", "rm", network_name(profile))
    access.forget_hosts(profile)
    return removed
