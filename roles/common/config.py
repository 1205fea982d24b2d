"""The files roles/common writes on a host, computed from the profile (used by the deploy and by render)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filters import hosts_lines
from gpuaas.groups import RKE2_SERVERS
from gpuaas.profile import Host, Profile
from gpuaas.templating import render_template
from roles.common.settings import CommonSettings

TEMPLATES = Path(__file__).parent / "templates"
HOSTS_MARKER = "# {mark} gpuaas cluster hosts"


@dataclass(frozen=True)
class ConfigFile:
    path: str
    template: str
    mode: str = "644"
    context: dict[str, Any] = field(default_factory=dict)


def settings_for(profile: Profile, node: Host) -> CommonSettings:
    return profile.role_settings("common", node)


def config_files(settings: CommonSettings) -> list[ConfigFile]:
    """Every templated file of the role, in the order the deploy writes them."""
    context = {"settings": settings}
    files = [
        ConfigFile("/etc/apt/apt.conf.d/90gpuaas-lock", "apt-lock.conf.j2", context=context),
        ConfigFile("/etc/chrony/chrony.conf", "chrony.conf.j2", context=context),
        ConfigFile("/etc/default/chrony", "chrony.default.j2", context=context),
        ConfigFile("/etc/modules-load.d/gpuaas.conf", "modules-load.conf.j2", context=context),
        ConfigFile("/etc/sysctl.d/90-gpuaas.conf", "sysctl.conf.j2", context=context),
        ConfigFile("/etc/systemd/journald.conf.d/90-gpuaas.conf", "journald.conf.j2", context=context),
    ]
    return [ConfigFile(f.path, str(TEMPLATES / f.template), f.mode, f.context) for f in files]


def hosts_entries(profile: Profile) -> list[dict[str, Any]]:
    """/etc/hosts lines for every node of the environment, and the API name on the servers."""
    entries = []
    for node in profile.hosts:
        names = [node.name]
        if node.name == profile.group(RKE2_SERVERS)[0].name:
            names.append(profile.cluster.api_hostname)
        entries.append({"address": str(node.address), "names": names})
    return entries


def hosts_block_lines(profile: Profile) -> list[str]:
    """The lines of the block the role keeps in /etc/hosts (the rest of that file belongs to the host)."""
    return hosts_lines(hosts_entries(profile)).splitlines()


def rendered_files(profile: Profile, node: Host) -> dict[str, str]:
    """Remote path -> content of every file the role writes on `node`; the /etc/hosts block as /etc/hosts.block."""
    files = {f.path: render_template(f.template, f.context) for f in config_files(settings_for(profile, node))}
    begin, end = HOSTS_MARKER.format(mark="BEGIN"), HOSTS_MARKER.format(mark="END")
    files["/etc/hosts.block"] = "\n".join([begin, *hosts_block_lines(profile), end]) + "\n"
    return files
