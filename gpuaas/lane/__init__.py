"""The local lane: an environment's hosts as systemd containers on the operator's machine, reached the
way real hosts are (over SSH, as an unprivileged account with sudo).

    machine   what this machine needs: Debian packages, the Docker engine, kernel limits
    image     the test host image, built once with debootstrap
    hosts     the containers: network, start, boot, remove
    access    the operator account, the lane's SSH key and the hosts' keys in known_hosts
    shapes    lane profiles shaped like a shipped profile (`gpuaas local up --shape staging`)
"""

from __future__ import annotations

import subprocess


class LaneError(Exception):
    """Something the local lane needs is missing or failed; the message says what and how to get it."""


def run(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    """Run a program of the lane; LaneError with its message when it fails and `check` is set."""
    result = subprocess.run(args, capture_output=True, text=True, check=False, input=input)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip()
        raise LaneError(
            f"`{' '.join(args[:4])}{' ...' if len(args) > 4 else ''}` failed (exit {result.returncode}) "
            f"{detail[-600:]}".strip()
        )
    return result
