"""Build pyinfra inventory groups from an environment profile (used by inventories/ENV.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from gpuaas.connection import identity_file, pyinfra_data, pyinfra_name, without_nagle
from gpuaas.errors import ProfileError
from gpuaas.groups import CONTROLLER, HOST_GROUPS
from gpuaas.lane import hosts as lane_hosts
from gpuaas.profile import Host, Profile, display_path, load_profile, resolve_profile_path
from gpuaas.secrets import generate_missing


def host_data(profile: Profile, source: Path, node: Host) -> dict[str, Any]:
    return {"gpuaas_profile": str(source), "gpuaas_node": node.name, **pyinfra_data(profile, node)}


def groups_for(profile: Profile, source: Path) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    groups = {
        group: [(pyinfra_name(profile, node), host_data(profile, source, node)) for node in profile.group(group)]
        for group in HOST_GROUPS
    }
    groups[CONTROLLER] = [("@local", {"gpuaas_profile": str(source)})]
    return groups


def load_groups(env_or_path: str | Path) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Validate the profile (exit 2 with every problem on bad input, before any host is contacted),
    then return its groups."""
    source = resolve_profile_path(env_or_path)
    try:
        profile = load_profile(source)
    except ProfileError as exc:
        print(exc.report(), file=sys.stderr)
        raise SystemExit(2) from None
    if profile.lane is not None:
        _require_lane(profile)
    generate_missing(profile)
    if profile.connection.kind == "ssh":
        without_nagle()
    return groups_for(profile, source)


def _require_lane(profile: Profile) -> None:
    """A lane's hosts are this machine's containers: say how to start them rather than time out."""
    how = lane_hosts.up_command(profile)
    # pyinfra's @docker connector takes a name it cannot find as an image to pull and run.
    running = lane_hosts.running_names(profile)
    missing = [node.name for node in profile.hosts if node.name not in running]
    if missing:
        print(
            f"{profile.name}: hosts not running as this checkout's lane: {', '.join(missing)}; start them with `{how}`",
            file=sys.stderr,
        )
        raise SystemExit(2)
    key = identity_file(profile)
    if profile.connection.kind == "ssh" and key is not None and not key.exists():
        print(
            f"{profile.name}: the lane's SSH key {display_path(key)} does not exist; `{how}` makes it", file=sys.stderr
        )
        raise SystemExit(2)
