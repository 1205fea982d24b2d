"""The lane's hosts: one systemd container per profile host, at its profile address on a Docker network
of the profile's `node_cidr`, started with the flags that run systemd as PID 1 without --privileged."""

from __future__ import annotations

import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from gpuaas.lane import LaneError, access, run
from gpuaas.lane.image import ensure_image
from gpuaas.lane.machine import engine_running, setup
from gpuaas.profile import Host, Profile
from gpuaas.secrets import GENERATED_DIR

BOOT_SECONDS = 90
#: The label that ties a container to the lane it was made for (see lane_id).
LANE_LABEL = "gpuaas.lane"

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


def lane_id_file(profile: Profile) -> Path:
    return GENERATED_DIR / profile.secret_scope / "lane-id"


def lane_id(profile: Profile) -> str:
    """This checkout's id for the profile's lane (made once, beside its secrets). Every container
    carries it: a container's services hold keys that only the secrets it was made with have
    (OpenBao's init output), so hosts made by another checkout, or before its secrets were
    removed, are never taken for this lane's."""
    path = lane_id_file(profile)
    if not path.exists():
        access.write_private(path, secrets.token_hex(16) + "\n")
    return path.read_text(encoding="utf-8").strip()


def up_command(profile: Profile) -> str:
    """The command that starts the profile's lane hosts."""
    shaped_from = profile.lane.shaped_from if profile.lane else None
    return "gpuaas local up" + (f" --shape {shaped_from}" if shaped_from else "")


def network_name(profile: Profile) -> str:
    """One Docker network per environment and subnet, so lanes with other subnets never collide."""
    cidr = profile.network.node_cidr
    return f"gpuaas-{profile.name}-{cidr.network_address}-{cidr.prefixlen}"


def ensure_network(profile: Profile) -> str:
    name = network_name(profile)
    if run("docker", "network", "inspect", name, check=False).returncode != 0:
        run(
            "docker",
            "network",
            "create",
            "--label",
            f"gpuaas.env={profile.name}",
            "--subnet",
            str(profile.network.node_cidr),
            name,
        )
    return name


def _container_state(name: str) -> str | None:
    result = run("docker", "inspect", "-f", "{{.State.Status}}", name, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def _start_host(profile: Profile, node: Host, image: str, network: str, owner: str) -> None:
    state = _container_state(node.name)
    if state == "running":
        return
    if state is not None:
        run("docker", "start", node.name)
        return
    run(
        "docker",
        "run",
        "-d",
        "--name",
        node.name,
        "--hostname",
        node.name,
        "--label",
        f"gpuaas.env={profile.name}",
        "--label",
        f"{LANE_LABEL}={owner}",
        "--network",
        network,
        "--ip",
        str(node.address),
        *SYSTEMD_RUN_FLAGS,
        image,
    )


def foreign_hosts(profile: Profile, owner: str) -> list[str]:
    """The profile's hosts that exist as containers made for another lane than `owner` (another
    checkout, or this one before its secrets were removed), in profile order."""
    result = run("docker", "ps", "-a", "--format", f'{{{{.Names}}}}\t{{{{.Label "{LANE_LABEL}"}}}}')
    labels = dict(line.split("\t", 1) for line in result.stdout.splitlines() if "\t" in line)
    return [node.name for node in profile.hosts if node.name in labels and labels[node.name] != owner]


def _take_over(profile: Profile, owner: str, replace: bool, log) -> None:
    """Refuse hosts made for another lane, naming them, unless `replace`: then remove them (a new
    container replaces each)."""
    foreign = foreign_hosts(profile, owner)
    if not foreign:
        return
    names = ", ".join(foreign)
    if not replace:
        raise LaneError(
            f"{names}: made for another checkout's {profile.name} lane, not for this one "
            f"({lane_id_file(profile).relative_to(GENERATED_DIR.parent)}); their services hold keys this checkout "
            f"does not have (OpenBao's init output). `{up_command(profile)} --replace` replaces "
            "them with new hosts (what they hold is lost); nothing was changed"
        )
    log(f"Replacing {names}: made for another checkout's lane")
    run("docker", "rm", "-f", "-v", *foreign)


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


def up(profile: Profile, log=print, replace: bool = False) -> list[Container]:
    """Create (or start) every host of the profile as a systemd container and, for an SSH connection,
    give it the operator account and record its host keys; idempotent. Containers of these names
    made for another lane are refused (LaneError, nothing changed), or replaced when `replace`."""
    if profile.lane is None:
        raise LaneError(
            f"profile '{profile.name}' has no `lane:` entry: the local lane runs only profiles whose hosts are "
            f"containers on this machine (inventories/local.yml, or `gpuaas local up --shape {profile.name}`)"
        )
    setup(log)
    owner = lane_id(profile)
    _take_over(profile, owner, replace, log)
    image = ensure_image(log)
    network = ensure_network(profile)
    for node in profile.hosts:
        _start_host(profile, node, image, network, owner)
    wait_booted([node.name for node in profile.hosts])
    if profile.connection.kind == "ssh":
        access.provision(profile)
    return containers(profile)


def running_names(profile: Profile) -> set[str]:
    """Names of the profile's containers that are running and were made for this checkout's lane
    (one docker call for all of them)."""
    if shutil.which("docker") is None or not lane_id_file(profile).exists():
        return set()
    result = run(
        "docker",
        "ps",
        "--filter",
        f"label=gpuaas.env={profile.name}",
        "--filter",
        f"label={LANE_LABEL}={lane_id(profile)}",
        "--format",
        "{{.Names}}",
        check=False,
    )
    return set(result.stdout.split()) if result.returncode == 0 else set()


def containers(profile: Profile) -> list[Container]:
    if not engine_running():
        return []
    result = run(
        "docker",
        "ps",
        "-a",
        "--filter",
        f"label=gpuaas.env={profile.name}",
        "--format",
        "{{.Names}}\t{{.State}}",
        check=False,
    )
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
