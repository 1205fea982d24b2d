"""Build pyinfra inventory groups from an environment profile (used by inventories/ENV.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from gpuaas import local_lane
from gpuaas.errors import ProfileError
from gpuaas.profile import HOST_GROUPS, Host, Profile, load_profile, resolve_profile_path
from gpuaas.secrets import generate_missing


def pyinfra_name(profile: Profile, node: Host) -> str:
    """pyinfra's name for a host: `@docker/NAME` in the local lane; elsewhere NAME, reached over SSH
    at its profile address (host data `ssh_hostname`)."""
    return f"@docker/{node.name}" if profile.connection.kind == "docker" else node.name


def host_data(profile: Profile, source: Path, node: Host) -> dict[str, Any]:
    data: dict[str, Any] = {"gpuaas_profile": str(source), "gpuaas_node": node.name}
    if profile.connection.kind == "ssh":
        data.update(
            ssh_user=profile.connection.user,
            ssh_port=profile.connection.port,
            ssh_hostname=str(node.address),
            _sudo=profile.connection.sudo,
        )
    return data


def groups_for(profile: Profile, source: Path) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    groups = {
        group: [(pyinfra_name(profile, node), host_data(profile, source, node)) for node in profile.group(group)]
        for group in HOST_GROUPS
    }
    groups["controller"] = [("@local", {"gpuaas_profile": str(source)})]
    return groups


def load_groups(env_or_path: str | Path) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Validate the profile (exit 2 with every problem on bad input), then return its groups."""
    source = resolve_profile_path(env_or_path)
    try:
        profile = load_profile(source)
    except ProfileError as exc:
        print(exc.report(), file=sys.stderr)
        raise SystemExit(2) from None
    if profile.connection.kind == "docker":
        _require_running(profile)
    generate_missing(profile)
    return groups_for(profile, source)


def _require_running(profile: Profile) -> None:
    # pyinfra's @docker connector takes a name it cannot find as an image to pull and run.
    running = local_lane.running_names(profile)
    missing = [node.name for node in profile.hosts if node.name not in running]
    if missing:
        print(f"{profile.name}: hosts not running: {', '.join(missing)}; start them with `gpuaas local up`",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
