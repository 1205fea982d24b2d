"""How the GPU Operator's container toolkit is wired into RKE2's containerd, chosen from the pinned
operator and RKE2 versions. RKE2 regenerates containerd's config.toml at every start, so nothing here
edits it: RKE2 finds the toolkit's runtimes under /usr/local/nvidia/toolkit itself and its
rke2-runtimeclasses chart creates the `nvidia` RuntimeClass; the toolkit is only pointed at RKE2's
containerd socket. A default runtime is RKE2's own option (`default-runtime` in a GPU host's
roles.rke2.agent_options), never the operator's.

Each supported combination is one `Wiring`, tested pair by pair in tests/test_gpu_stack_role.py:
- operator 25.10 and newer, on an RKE2 whose containerd is 2.0 or newer (v1.31.6+, v1.32.2+, v1.33+):
  CDI (the chart's default there), so pods need no runtimeClassName;
- operator 25.3 and newer on an older containerd (and every 25.3.x): CDI off (NVIDIA's 25.3 notes: not
  supported on RKE2), GPUs handed to containers as volume mounts, never from an unprivileged pod's
  NVIDIA_VISIBLE_DEVICES, and pods ask for runtimeClassName: nvidia;
- operator 24.9.x: the toolkit pointed at the socket, runtimeClassName: nvidia.
Older operators configured containerd's file themselves, which RKE2 overwrites: they are refused."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SOCKET = "/run/k3s/containerd/containerd.sock"
#: The first RKE2 release of each Kubernetes minor line that ships containerd 2.0; later lines all do.
CONTAINERD2_FROM = {31: (1, 31, 6), 32: (1, 32, 2), 33: (1, 33, 0)}


def version_key(version: str) -> tuple[int, ...]:
    """`v25.10.1` -> (25, 10, 1); `v1.32.2+rke2r1` -> (1, 32, 2, 2)."""
    return tuple(int(n) for n in re.findall(r"\d+", version)) or (0,)


def containerd2(rke2: str) -> bool:
    """Whether the RKE2 release ships containerd 2.0 or newer."""
    release = version_key(rke2)[:3]
    if len(release) < 2 or release[0] != 1:
        return False
    first = CONTAINERD2_FROM.get(release[1])
    return release >= first if first else release[1] > max(CONTAINERD2_FROM)


def _socket() -> dict[str, Any]:
    return {"toolkit": {"env": [{"name": "CONTAINERD_SOCKET", "value": SOCKET}]}}


def _cdi() -> dict[str, Any]:
    return {**_socket(), "cdi": {"enabled": True}}


def _volume_mounts() -> dict[str, Any]:
    env = {
        "CONTAINERD_SOCKET": SOCKET,
        "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED": "false",
        "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS": "true",
    }
    return {
        "cdi": {"enabled": False},
        "toolkit": {"env": [{"name": name, "value": value} for name, value in env.items()]},
        "devicePlugin": {"env": [{"name": "DEVICE_LIST_STRATEGY", "value": "volume-mounts"}]},
    }


@dataclass(frozen=True)
class Wiring:
    """One way of wiring the toolkit, and the versions it is for."""

    label: str
    applies: Callable[[tuple[int, ...], str], bool]
    values: Callable[[], dict[str, Any]]
    #: Whether pods must ask for runtimeClassName: nvidia.
    runtime_class: bool


#: The first that applies wins.
WIRINGS = (
    Wiring(
        "operator 25.10+ on containerd 2.0+ (CDI)", lambda op, rke2: op >= (25, 10) and containerd2(rke2), _cdi, False
    ),
    Wiring("operator 25.3+ (volume mounts, runtime class)", lambda op, rke2: op >= (25, 3), _volume_mounts, True),
    Wiring("operator 24.9 (runtime class)", lambda op, rke2: op >= (24, 9), _socket, True),
)


class UnsupportedVersions(ValueError):
    """No wiring is known for the pinned operator on the pinned RKE2."""


def wiring(operator: str, rke2: str) -> Wiring:
    key = version_key(operator)
    found = next((w for w in WIRINGS if w.applies(key, rke2)), None)
    if found is None:
        raise UnsupportedVersions(
            f"GPU Operator {operator} configures containerd's file itself, which RKE2 rewrites at every start: "
            "pin v24.9 or newer"
        )
    return found


def operator_runtime_values(operator: str, rke2: str) -> dict[str, Any]:
    """The values that wire the toolkit into RKE2's containerd for these versions."""
    return wiring(operator, rke2).values()
