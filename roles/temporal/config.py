"""The files roles/temporal writes on a host, computed from the profile."""

from __future__ import annotations

import posixpath
from pathlib import Path

from gpuaas.profile import Host, Profile
from gpuaas.templating import render_template
from roles.temporal.settings import TemporalSettings

TEMPLATES = Path(__file__).parent / "templates"
UNIT = "/etc/systemd/system/temporal.service"
PROGRAM_LINK = "/usr/local/bin/temporal"


def settings_for(profile: Profile) -> TemporalSettings:
    return profile.services.temporal


def data_dir(settings: TemporalSettings) -> str:
    return posixpath.dirname(settings.db_file)


def context(profile: Profile, node: Host) -> dict:
    settings = settings_for(profile)
    return {"settings": settings, "address": str(node.address), "program": PROGRAM_LINK,
            "data_dir": data_dir(settings)}  # fmt: skip


def rendered_files(profile: Profile, node: Host) -> dict[str, str]:
    if settings_for(profile).mode != "dev":
        return {}
    return {UNIT: render_template(str(TEMPLATES / "temporal.service.j2"), context(profile, node))}


def health_command(settings: TemporalSettings, address: str) -> str:
    return f"{PROGRAM_LINK} operator cluster health --address {address}:{settings.port}"
