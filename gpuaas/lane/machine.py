"""What the operator's machine needs for the local lane: Debian packages, a running Docker engine and
kernel limits that many systemd containers need. Installed as root; otherwise the message says what
is missing and how to get it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from gpuaas.lane import LaneError, run

ENGINE_START_SECONDS = 60

#: Program -> the Debian package that provides it. The controller needs them all: the engine for the
#: hosts, debootstrap for their image, age for encrypted secrets and backups, the OpenSSH client
#: for the lane's key and streamed backups, and Chromium, in which the tests open the evidence page.
CONTROLLER_PROGRAMS = {
    "dockerd": "docker.io",
    "debootstrap": "debootstrap",
    "age": "age",
    "age-keygen": "age",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "chromium": "chromium",
}

#: systemd in every container holds inotify instances; the kernel default (128) stops booting
#: after about 20 hosts, so the lane raises it the way kind's documentation advises.
INOTIFY_LIMITS = {"/proc/sys/fs/inotify/max_user_instances": 8192, "/proc/sys/fs/inotify/max_user_watches": 524288}


def is_root() -> bool:
    return os.geteuid() == 0


def apt_install(*packages: str) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LaneError(f"`{' '.join(command)}` failed: {result.stderr.strip()[-400:]}")


def missing_packages() -> list[str]:
    """The Debian packages of the controller's programs that are not installed."""
    return sorted({package for program, package in CONTROLLER_PROGRAMS.items() if shutil.which(program) is None})


def ensure_tools(log=print) -> None:
    """Install the controller's programs that are missing (as root), or say which are."""
    missing = missing_packages()
    if not missing:
        return
    if not is_root():
        raise LaneError(
            f"the local lane needs the Debian packages {', '.join(missing)}: run this command as root "
            f"to have them installed, or `sudo apt-get install -y {' '.join(missing)}`"
        )
    log(f"Installing {', '.join(missing)} (Debian packages)")
    apt_install(*missing)


def engine_running() -> bool:
    return shutil.which("docker") is not None and run("docker", "info", check=False).returncode == 0


def ensure_engine(log=print) -> None:
    """Make sure a Docker engine answers; as root install (docker.io) and start it when missing."""
    if engine_running():
        return
    if not is_root():
        missing = "the docker client" if shutil.which("docker") is None else "a running Docker engine"
        raise LaneError(
            f"the local lane needs {missing}: run this command as root to have it installed and "
            "started, or run `sudo apt-get install -y docker.io && sudo dockerd &` and add your user "
            "to the docker group"
        )
    if shutil.which("dockerd") is None:
        log("Installing the Docker engine (Debian package docker.io)")
        apt_install("docker.io")
    if Path("/run/systemd/system").is_dir():
        run("systemctl", "start", "docker")
    else:
        log("Starting dockerd (this machine has no systemd)")
        with open("/var/log/dockerd.log", "ab") as dockerd_log:
            subprocess.Popen(["dockerd"], stdout=dockerd_log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + ENGINE_START_SECONDS
    while not engine_running():
        if time.monotonic() > deadline:
            raise LaneError(f"dockerd did not answer within {ENGINE_START_SECONDS}s; see /var/log/dockerd.log")
        time.sleep(1)


def ensure_inotify_limits(log=print) -> None:
    for path, wanted in INOTIFY_LIMITS.items():
        current = int(Path(path).read_text())
        if current >= wanted:
            continue
        if not is_root():
            log(f"warning: {path} is {current}; more than ~20 local hosts need {wanted} (run as root)")
            continue
        Path(path).write_text(str(wanted))


def setup(log=print) -> None:
    """Everything the lane needs on this machine: the programs, a running engine, the kernel limits."""
    ensure_tools(log)
    ensure_engine(log)
    ensure_inotify_limits(log)
