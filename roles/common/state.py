"""The whole desired state of roles/common as probes, checked in one round trip (see gpuaas.probe)."""

from __future__ import annotations

import shlex

from gpuaas.probe import Probe, block_probe, command_probe, files_probe, packages_probe, services_probe, sysctls_probe
from gpuaas.templating import render_template
from roles.common.config import HOSTS_MARKER, config_files
from roles.common.facts import KernelModuleState
from roles.common.settings import CommonSettings


def probes(settings: CommonSettings, hostname: str, hosts_block: list[str]) -> list[Probe]:
    account = settings.service_account
    checks = [
        files_probe({f.path: (render_template(f.template, f.context), f.mode) for f in config_files(settings)}),
        packages_probe(settings.packages),
        services_probe(running=["chrony", "systemd-journald"], enabled=["chrony"]),
        command_probe("hostname", "uname -n", hostname),
        block_probe("/etc/hosts", hosts_block, HOSTS_MARKER),
    ]
    checks += [
        command_probe(
            f"module:{m.name}",
            f'[ "$({KernelModuleState().command(m.name, m.kconfig)})" = absent ] && echo absent || echo present',
            "present",
        )
        for m in settings.kernel_modules
    ]
    checks.append(sysctls_probe(settings.sysctls))
    if settings.swap_off:
        checks.append(
            command_probe(
                "swap",
                "{ tail -n +2 /proc/swaps; grep -E '^[^#].*[[:space:]]swap[[:space:]]' /etc/fstab; } | wc -l",
                "0",
            )
        )
    name = shlex.quote(account.name)
    checks.append(
        command_probe(
            "account",
            f"getent group {name} >/dev/null && getent passwd {name} | cut -d: -f6,7; "
            f"stat -c '%a %U %G' {shlex.quote(account.home)}",
            f"{account.home}:/usr/sbin/nologin 750 {account.name} {account.name}",
        )
    )
    return checks
