"""The files roles/redis writes on a host, computed from the profile (used by the deploy and by render)."""

from __future__ import annotations

import json
from pathlib import Path

from gpuaas.profile import Host, Profile
from gpuaas.secrets import Secret, resolve
from gpuaas.templating import render_template
from roles.redis.settings import RedisSettings

TEMPLATES = Path(__file__).parent / "templates"
MAIN_CONFIG = "/etc/redis/redis.conf"
CONFIG = "/etc/redis/gpuaas.conf"
AUTH = "/etc/redis/gpuaas-auth.conf"
INCLUDE_LINE = f"include {CONFIG}"


def settings_for(profile: Profile) -> RedisSettings:
    return profile.services.redis


def context(profile: Profile, node: Host) -> dict:
    return {"settings": settings_for(profile), "address": str(node.address)}


def templates() -> dict[str, str]:
    return {CONFIG: str(TEMPLATES / "gpuaas.conf.j2")}


def rendered_files(profile: Profile, node: Host) -> dict[str, str]:
    """Every non-secret file of the role on `node` (the auth file holds the password: never rendered)."""
    data = context(profile, node)
    return {path: render_template(template, data) for path, template in templates().items()}


def profile_auth_file(profile: Profile) -> Secret:
    """auth_file with the profile's password."""
    return auth_file(resolve(profile, settings_for(profile).password))


def auth_file(password: Secret) -> Secret:
    """The `requirepass` file as a Secret: its text holds the password, so it travels like one."""
    return Secret(f"{password.name} (redis auth)", f"requirepass {json.dumps(password.reveal())}\n")
