"""The whole desired state of roles/common as probes, checked in one round trip (see gpuaas.probe)."""

from __future__ import annotations

import shlex

from gpuaas.probe import (Probe, block_probe, command_probe, file_probe, packages_probe, service_probe,
                          sysctl_probe)
from gpuaas.templating import render_template
from roles.common.config import HOSTS_MARKER, config_files
from roles.common.facts import KernelModuleState
from roles.common.settings import CommonSettings


def probes(settings: CommonSettings, hostname: str, hosts_block: list[str]) -> list[Probe]:
    account = settings.service_account
    checks = [file_probe(f.path, render_template(f.template, f.context), f.mode) for f in config_files(settings)]
    checks += [
        packages_probe(settings.packages),
        service_probe("chrony"),
        service_probe("systemd-journald", enabled=False),
        command_probe("hostname", "uname -n", hostname),
        block_probe("/etc/hosts", hosts_block, HOSTS_MARKER),
    ]
    checks += [
        command_probe(f"module:{m.name}",
                      f'[ "$({KernelModuleState().command(m.name, m.kconfig)})" = absent ] && echo absent || echo present',
                      "present")
        for m in settings.kernel_modules
    ]
    checks += [sysctl_probe(key, value) for key, value in settings.sysctls.items()]
    if settings.swap_off:
        checks.append(command_probe(
            "swap", "{ tail -n +2 /proc/swaps; grep -E '^[^#].*[[:space:]]swap[[:space:]]' /etc/fstab; } | wc -l", "0"))
    name = shlex.quote(account.name)
    checks += [
        command_probe("group", f"getent group {name} | cut -d: -f1", account.name),
        command_probe("user", f"getent passwd {name} | cut -d: -f6,7", f"{account.home}:/usr/sbin/nologin"),
        command_probe("home", f"stat -c '%a %U %G' {shlex.quote(account.home)}", f"750 {account.name} {account.name}"),
    ]
    return checks
