"""The local lane: an environment's hosts as systemd Docker containers on this machine."""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from gpuaas.profile import REPO_ROOT, Host, Profile

SUITE = "bookworm"
IMAGE_REPOSITORY = "gpuaas-testhost"
IMAGE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "sudo",
    "iproute2",
    "ca-certificates",
    "curl",
    "gnupg",
    "kmod",
    "procps",
)
CACHE_DIR = REPO_ROOT / ".cache"
ENGINE_START_SECONDS = 60
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


class LocalLaneError(Exception):
    """Something the local lane needs is missing; the message says what and how to get it."""


@dataclass(frozen=True)
class Container:
    name: str
    state: str
    address: str


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip()
        raise LocalLaneError(f"`{' '.join(args)}` failed (exit {result.returncode}) {detail}".strip())
    return result


def _is_root() -> bool:
    return os.geteuid() == 0


def _apt_install(*packages: str) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LocalLaneError(f"`{' '.join(command)}` failed: {result.stderr.strip()[-400:]}")


def engine_running() -> bool:
    return shutil.which("docker") is not None and _run("docker", "info", check=False).returncode == 0


def ensure_engine(log=print) -> None:
    """Make sure a Docker engine answers; as root install (docker.io) and start it when missing."""
    if engine_running():
        return
    if not _is_root():
        missing = "the docker client" if shutil.which("docker") is None else "a running Docker engine"
        raise LocalLaneError(
            f"the local lane needs {missing}: run this command as root to have it installed and "
            "started, or run `sudo apt-get install -y docker.io && sudo dockerd &` and add your user "
            "to the docker group"
        )
    if shutil.which("dockerd") is None:
        log("Installing the Docker engine (Debian package docker.io)")
        _apt_install("docker.io")
    if Path("/run/systemd/system").is_dir():
        _run("systemctl", "start", "docker")
    else:
        log("Starting dockerd (this machine has no systemd)")
        with open("/var/log/dockerd.log", "ab") as dockerd_log:
            subprocess.Popen(["dockerd"], stdout=dockerd_log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + ENGINE_START_SECONDS
    while not engine_running():
        if time.monotonic() > deadline:
            raise LocalLaneError(f"dockerd did not answer within {ENGINE_START_SECONDS}s; see /var/log/dockerd.log")
        time.sleep(1)


#: systemd in every container holds inotify instances; the kernel default (128) stops booting
#: after about 20 hosts, so the lane raises it the way kind's documentation advises.
INOTIFY_LIMITS = {"/proc/sys/fs/inotify/max_user_instances": 8192, "/proc/sys/fs/inotify/max_user_watches": 524288}


def ensure_inotify_limits(log=print) -> None:
    for path, wanted in INOTIFY_LIMITS.items():
        current = int(Path(path).read_text())
        if current >= wanted:
            continue
        if not _is_root():
            log(f"warning: {path} is {current}; more than ~20 local hosts need {wanted} (run as root)")
            continue
        Path(path).write_text(str(wanted))


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 .sources first, then sources.list)."""
    candidates = sorted(glob.glob("/etc/apt/sources.list.d/*.sources")) + ["/etc/apt/sources.list"]
    for path in candidates:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError:
            continue
        for match in re.finditer(r"^URIs:\s*(\S+)|^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+\s", text, re.M):
            uri = match.group(1) or match.group(2)
            if "security" not in uri:
                return uri
    raise LocalLaneError("no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list")


def image_tag() -> str:
    """The test host image is named by a hash of its recipe: a changed recipe builds a new image."""
    recipe = f"{SUITE}|minbase|{','.join(IMAGE_PACKAGES)}"
    return f"{IMAGE_REPOSITORY}:{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def ensure_image(log=print) -> str:
    tag = image_tag()
    if _run("docker", "image", "inspect", tag, check=False).returncode == 0:
        return tag
    if shutil.which("debootstrap") is None:
        if not _is_root():
            raise LocalLaneError("building the test host image needs debootstrap: sudo apt-get install -y debootstrap")
        _apt_install("debootstrap")
    mirror = debian_mirror()
    log(f"Building test host image {tag} with debootstrap from {mirror} (once; it is cached)")
    CACHE_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR, prefix="rootfs-") as rootfs:
        _run("debootstrap", "--variant=minbase", f"--include={','.join(IMAGE_PACKAGES)}", SUITE, rootfs, mirror)
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["docker", "import", "-c", 'CMD ["/lib/systemd/systemd"]', "-", tag],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        tar.stdout.close()
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise LocalLaneError(f"docker import failed: {imported.stderr.strip()}")
    return tag


def network_name(profile: Profile) -> str:
    """One Docker network per environment and subnet, so lanes with other subnets never collide."""
    cidr = profile.network.node_cidr
    return f"gpuaas-{profile.name}-{cidr.network_address}-{cidr.prefixlen}"


def ensure_network(profile: Profile) -> str:
    name = network_name(profile)
    if _run("docker", "network", "inspect", name, check=False).returncode != 0:
        _run(
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
    result = _run("docker", "inspect", "-f", "{{.State.Status}}", name, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def _start_host(profile: Profile, node: Host, image: str, network: str) -> None:
    state = _container_state(node.name)
    if state == "running":
        return
    if state is not None:
        _run("docker", "start", node.name)
        return
    _run(
        "docker",
        "run",
        "-d",
        "--name",
        node.name,
        "--hostname",
        node.name,
        "--label",
        f"gpuaas.env={profile.name}",
        "--network",
        network,
        "--ip",
        str(node.address),
        *SYSTEMD_RUN_FLAGS,
        image,
    )


def wait_booted(names: list[str], timeout: float = BOOT_SECONDS) -> None:
    """Wait until systemd in every container reports running (or degraded: booted, a unit failed)."""
    pending = list(names)
    deadline = time.monotonic() + timeout
    while pending:
        for name in list(pending):
            state = _run("docker", "exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                pending.remove(name)
        if pending and time.monotonic() > deadline:
            raise LocalLaneError(f"systemd did not finish booting in {', '.join(pending)} within {timeout:.0f}s")
        if pending:
            time.sleep(0.5)


def up(profile: Profile, log=print) -> list[Container]:
    """Create (or start) every host of the profile as a systemd container; idempotent."""
    if profile.connection.kind != "docker":
        raise LocalLaneError(
            f"profile '{profile.name}' has connection.kind {profile.connection.kind}; "
            "the local lane runs only profiles whose hosts are Docker containers"
        )
    ensure_engine(log)
    ensure_inotify_limits(log)
    image = ensure_image(log)
    network = ensure_network(profile)
    for node in profile.hosts:
        _start_host(profile, node, image, network)
    wait_booted([node.name for node in profile.hosts])
    return containers(profile)


def running_names(profile: Profile) -> set[str]:
    """Names of the profile's containers that are running (one docker call for all of them)."""
    if shutil.which("docker") is None:
        return set()
    result = _run("docker", "ps", "--filter", f"label=gpuaas.env={profile.name}", "--format", "{{.Names}}", check=False)
    return set(result.stdout.split()) if result.returncode == 0 else set()


def containers(profile: Profile) -> list[Container]:
    if not engine_running():
        return []
    result = _run(
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
    """Remove the profile's containers and network; returns the names removed."""
    if not engine_running():
        return []
    removed = [c.name for c in containers(profile)]
    if removed:
        _run("docker", "rm", "-f", "-v", *removed)
    if _run("docker", "network", "inspect", network_name(profile), check=False).returncode == 0:
        _run("docker", "network", "rm", network_name(profile))
    return removed
