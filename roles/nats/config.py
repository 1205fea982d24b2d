"""The files roles/nats writes on a host, computed from the profile (used by the deploy and by render)."""

from __future__ import annotations

import json
from pathlib import Path

from gpuaas.profile import Host, Profile
from gpuaas.secrets import Secret, resolve
from gpuaas.templating import render_template
from roles.nats.settings import NatsSettings

TEMPLATES = Path(__file__).parent / "templates"
CONFIG = "/etc/nats/nats.conf"
AUTH = "/etc/nats/auth.conf"
UNIT = "/etc/systemd/system/nats.service"
PROGRAM_LINK = "/usr/local/bin/nats-server"


def settings_for(profile: Profile) -> NatsSettings:
    return profile.services.nats


#: Where the monitoring port listens: it answers anyone, so only the host itself reaches it.
MONITOR_ADDRESS = "127.0.0.1"


def context(profile: Profile, node: Host) -> dict:
    return {
        "settings": settings_for(profile),
        "server_name": node.name,
        "address": str(node.address),
        "monitor_address": MONITOR_ADDRESS,
        "program": PROGRAM_LINK,
    }


def monitor_url(settings: NatsSettings, path: str) -> str:
    """A URL of the monitoring port (/varz, /healthz), as the host itself reaches it."""
    return f"http://{MONITOR_ADDRESS}:{settings.monitor_port}{path}"


def templates() -> dict[str, str]:
    """Remote path -> template of every non-secret file the role writes."""
    return {CONFIG: str(TEMPLATES / "nats.conf.j2"), UNIT: str(TEMPLATES / "nats.service.j2")}


def rendered_files(profile: Profile, node: Host) -> dict[str, str]:
    """Every non-secret file of the role on `node` (auth.conf holds a password: render never writes it)."""
    data = context(profile, node)
    return {path: render_template(template, data) for path, template in templates().items()}


def profile_auth_file(profile: Profile) -> Secret:
    """auth_file with the profile's user and password."""
    settings = settings_for(profile)
    return auth_file(settings, resolve(profile, settings.password))


def auth_file(settings: NatsSettings, password: Secret) -> Secret:
    """auth.conf as a Secret: its text holds the password, so it travels like one."""
    text = (
        "# Managed by gpuaas roles/nats.\n"
        "authorization {\n"
        f"  users = [\n    {{ user: {json.dumps(settings.user)}, password: {json.dumps(password.reveal())} }}\n  ]\n"
        "}\n"
    )
    return Secret(f"{password.name} (nats auth.conf)", text)
