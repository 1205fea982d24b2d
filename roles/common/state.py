"""The whole desired state of roles/common as probes, checked in one round trip (see gpuaas.probe)."""

from __future__ import annotations

import shlex

from gpuaas.probe import Probe, block_probe, files_probe, packages_probe, services_probe, sysctls_probe
from gpuaas.templating import render_template
from roles.common.config import HOSTS_MARKER, config_files
from roles.common.facts import DPKG_PENDING, FSTAB_SWAP_ERE, KernelModuleState
from roles.common.settings import CommonSettings


def probes(settings: CommonSettings, hostname: str, hosts_block: list[str]) -> list[Probe]:
    account = settings.service_account
    checks = [
        files_probe({f.path: (render_template(f.template, f.context), f.mode) for f in config_files(settings)}),
        packages_probe(settings.packages),
        Probe("dpkg", DPKG_PENDING, "0 0"),
        services_probe(running=["chrony", "systemd-journald"], enabled=["chrony"]),
        Probe("hostname", 'read -r name < /proc/sys/kernel/hostname; echo "$name"', hostname),
        block_probe("/etc/hosts", hosts_block, HOSTS_MARKER),
    ]
    checks += [
        Probe(f"module:{m.name}", KernelModuleState().command(m.name, m.kconfig), "loaded|builtin", pattern=True)
        for m in settings.kernel_modules
    ]
    checks.append(sysctls_probe(settings.sysctls))
    if settings.swap_off:
        checks.append(
            Probe(
                "swap",
                'awk \'FILENAME=="/proc/swaps" && FNR>1 {n++} '
                f'FILENAME=="/etc/fstab" && /{FSTAB_SWAP_ERE}/ {{n++}} END {{print n+0}}\' /proc/swaps /etc/fstab',
                "0",
            )
        )
    name = shlex.quote(account.name)
    checks.append(
        Probe(
            "account",
            f'awk -F: -v u={name} \'FILENAME=="/etc/group" && $1==u {{g=1}} '
            'FILENAME=="/etc/passwd" && $1==u && g {print $6":"$7}\' /etc/group /etc/passwd; '
            f"stat -c '%a %U %G' {shlex.quote(account.home)}",
            f"{account.home}:/usr/sbin/nologin 750 {account.name} {account.name}",
        )
    )
    return checks
