"""Write an environment's effective per-host configuration as reviewable files, without contacting hosts."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from gpuaas.catalog import ROLES
from gpuaas.profile import HOST_GROUPS, SECRET_REF, Profile, deep_merge
from roles import common
from roles.common import config as common_config


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True)


def host_settings(profile: Profile, name: str) -> dict[str, Any]:
    node = profile.host(name)
    return {
        "environment": profile.name,
        "host": node.model_dump(mode="json", exclude={"roles"}),
        "connection": profile.connection.model_dump(mode="json"),
        "network": profile.network.model_dump(mode="json"),
        "cluster": profile.cluster.model_dump(mode="json"),
        "roles": {"common": common_config.settings_for(profile, node).model_dump(mode="json")}
        if any(g in node.groups for g in common.APPLIES_TO)
        else {},
    }


def host_files(profile: Profile, name: str) -> dict[str, str]:
    """Remote path -> content of every file the roles write on the host."""
    node = profile.host(name)
    files: dict[str, str] = {}
    for role in ROLES:
        if any(g in node.groups for g in role.applies_to):
            files.update(role.rendered_files(profile, node))
    return files


def secret_index(profile: Profile) -> dict[str, Any]:
    """Every secret by name: where its value comes from and which fields use it. Never a value."""
    used_by: dict[str, list[str]] = {}
    for path, ref in profile.secret_refs().items():
        used_by.setdefault(SECRET_REF.match(ref).group(1), []).append(path)
    return {
        name: deep_merge(source.model_dump(exclude_none=True), {"used_by": sorted(used_by.get(name, []))})
        for name, source in sorted(profile.secrets.items())
    }


def render(profile: Profile, out_dir: Path) -> list[Path]:
    """Replace out_dir with the rendered environment; returns the files written, sorted."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    written: dict[Path, str] = {
        out_dir / "environment.yml": _dump(
            {
                "name": profile.name,
                "topology": profile.topology,
                "groups": {g: [h.name for h in profile.group(g)] for g in HOST_GROUPS},
                "artifacts": {k: v.model_dump(mode="json", exclude_none=True) for k, v in profile.artifacts.items()},
                "dns": profile.dns.model_dump(mode="json"),
                "backup": profile.backup.model_dump(mode="json"),
                "services": profile.services.model_dump(mode="json"),
                "rollout": profile.rollout.model_dump(mode="json"),
            }
        ),
        out_dir / "secrets.yml": _dump(secret_index(profile)),
    }
    for node in profile.hosts:
        base = out_dir / "hosts" / node.name
        written[base / "settings.yml"] = _dump(host_settings(profile, node.name))
        for remote, content in host_files(profile, node.name).items():
            written[base / "files" / remote.lstrip("/")] = content
    for path, content in written.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return sorted(written)
