"""Everything roles/common keeps on a host, declared once: the deploy converges it and the one-round-trip
check reads it back (see gpuaas.managed). The baseline's own kinds of state (the hostname, the /etc/hosts
block, kernel modules and parameters, swap, dpkg, the service account) are items defined here."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from gpuaas.managed import Applied, Item, Packages, Template
from gpuaas.probe import Probe, block_probe, services_probe, sysctls_probe
from gpuaas.profile import Host, Profile
from roles.common.config import HOSTS_MARKER, config_files, hosts_block_lines, settings_for
from roles.common.facts import DPKG_PENDING, FSTAB_SWAP_ERE, KernelModuleState
from roles.common.operations import dpkg_settled, file_block, kernel_module, swap_disabled
from roles.common.settings import CommonSettings


@dataclass(eq=False)
class DpkgSettled:
    """No package installation left half-done by an interrupted dpkg (apt refuses to work past one)."""

    @property
    def name(self) -> str:
        return "dpkg settled"

    def probes(self) -> list[Probe]:
        return [Probe(self.name, DPKG_PENDING, "0 0")]

    def apply(self, applied: Applied) -> OperationMeta:
        return dpkg_settled(name="Ensure no package installation was left half-done")


@dataclass(eq=False)
class Unit:
    """A systemd unit running (and enabled when `enabled`), restarted when any of `restart_on` changed;
    `restart` says what the restart brings about (`chrony runs with its configuration`)."""

    unit: str
    restart: str
    restart_on: tuple[Item, ...] = ()
    enabled: bool = True

    @property
    def name(self) -> str:
        return f"service {self.unit}"

    def probes(self) -> list[Probe]:
        probe = services_probe(running=[self.unit], enabled=[self.unit] if self.enabled else [])
        return [Probe(self.name, probe.command, probe.wanted, pattern=True)]

    def apply(self, applied: Applied) -> OperationMeta:
        systemd.service(
            name=f"Ensure {self.unit} is running" + (" and enabled" if self.enabled else ""),
            service=self.unit,
            running=True,
            enabled=True if self.enabled else None,
        )
        return systemd.service(
            name=f"Ensure {self.restart}",
            service=self.unit,
            restarted=True,
            _if=any_changed(*applied.changed(self.restart_on)),
        )


@dataclass(eq=False)
class Hostname:
    """The host's name, as the kernel reports it."""

    hostname: str

    @property
    def name(self) -> str:
        return "hostname"

    def probes(self) -> list[Probe]:
        return [Probe(self.name, 'read -r name < /proc/sys/kernel/hostname; echo "$name"', self.hostname)]

    def apply(self, applied: Applied) -> OperationMeta:
        return server.hostname(name="Ensure the hostname is set", hostname=self.hostname)


@dataclass(eq=False)
class HostsBlock:
    """The cluster's names in a marked block of /etc/hosts; the rest of the file belongs to the host."""

    lines: tuple[str, ...]
    path: str = "/etc/hosts"

    @property
    def name(self) -> str:
        return f"block {self.path}"

    def probes(self) -> list[Probe]:
        probe = block_probe(self.path, list(self.lines), HOSTS_MARKER)
        return [Probe(self.name, probe.command, probe.wanted)]

    def apply(self, applied: Applied) -> OperationMeta:
        return file_block(
            name=f"Ensure cluster hosts are in {self.path}", path=self.path, lines=list(self.lines), marker=HOSTS_MARKER
        )


@dataclass(eq=False)
class KernelModule:
    """A kernel module loaded now, unless the running kernel has it built in."""

    module: str
    kconfig: str | None = None

    @property
    def name(self) -> str:
        return f"kernel module {self.module}"

    def probes(self) -> list[Probe]:
        command = KernelModuleState().command(self.module, self.kconfig)
        return [Probe(self.name, command, "loaded|builtin", pattern=True)]

    def apply(self, applied: Applied) -> OperationMeta:
        return kernel_module(
            name=f"Ensure kernel module {self.module} is available", module=self.module, kconfig=self.kconfig
        )


@dataclass(eq=False)
class Sysctl:
    """A kernel parameter's live value (the file under /etc/sysctl.d keeps it across boots)."""

    key: str
    value: str

    @property
    def name(self) -> str:
        return f"sysctl {self.key}"

    def probes(self) -> list[Probe]:
        probe = sysctls_probe({self.key: self.value})
        return [Probe(self.name, probe.command, probe.wanted)]

    def apply(self, applied: Applied) -> OperationMeta:
        value: int | str = int(self.value) if self.value.lstrip("-").isdigit() else self.value
        return server.sysctl(name=f"Ensure sysctl {self.key} = {self.value}", key=self.key, value=value)


@dataclass(eq=False)
class SwapOff:
    """No swap in use and no active swap line in /etc/fstab (the kubelet refuses swap by default)."""

    @property
    def name(self) -> str:
        return "swap off"

    def probes(self) -> list[Probe]:
        command = (
            'awk \'FILENAME=="/proc/swaps" && FNR>1 {n++} '
            f'FILENAME=="/etc/fstab" && /{FSTAB_SWAP_ERE}/ {{n++}} END {{print n+0}}\' /proc/swaps /etc/fstab'
        )
        return [Probe(self.name, command, "0")]

    def apply(self, applied: Applied) -> OperationMeta:
        return swap_disabled(name="Ensure swap is off")


@dataclass(eq=False)
class SystemAccount:
    """A system user and group without a login shell, its home readable by the group only (0750)."""

    user: str
    home: str

    @property
    def name(self) -> str:
        return f"account {self.user}"

    def probes(self) -> list[Probe]:
        user = shlex.quote(self.user)
        command = (
            f'awk -F: -v u={user} \'FILENAME=="/etc/group" && $1==u {{g=1}} '
            'FILENAME=="/etc/passwd" && $1==u && g {print $6":"$7}\' /etc/group /etc/passwd; '
            f"stat -c '%a %U %G' {shlex.quote(self.home)}"
        )
        return [Probe(self.name, command, f"{self.home}:/usr/sbin/nologin 750 {self.user} {self.user}")]

    def apply(self, applied: Applied) -> OperationMeta:
        server.group(name=f"Ensure group {self.user} exists", group=self.user, system=True)
        server.user(
            name=f"Ensure service account {self.user} exists",
            user=self.user,
            group=self.user,
            home=self.home,
            shell="/usr/sbin/nologin",
            system=True,
            create_home=True,
        )
        return files.directory(
            name=f"Ensure {self.home} is private", path=self.home, user=self.user, group=self.user, mode="750"
        )


def desired(profile: Profile, node: Host) -> list[Item]:
    return baseline(settings_for(profile, node), node.name, hosts_block_lines(profile))


def baseline(settings: CommonSettings, hostname: str, hosts_block: list[str]) -> list[Item]:
    """The items of `desired`, from the node's settings, its name and the lines of the /etc/hosts block."""
    apt_lock, chrony_conf, chrony_default, modules_conf, sysctl_conf, journald_conf = (
        Template(f.path, f.template, f.context, mode=f.mode) for f in config_files(settings)
    )
    account = settings.service_account
    return [
        apt_lock,
        DpkgSettled(),
        # chrony's configuration goes first so that the package's first start already uses it.
        chrony_conf,
        chrony_default,
        Packages(tuple(settings.packages), cache_time=settings.apt_cache_seconds),
        Unit("chrony", "chrony runs with its configuration", restart_on=(chrony_conf, chrony_default)),
        Hostname(hostname),
        HostsBlock(tuple(hosts_block)),
        modules_conf,
        *(KernelModule(m.name, m.kconfig) for m in settings.kernel_modules),
        sysctl_conf,
        *(Sysctl(key, value) for key, value in settings.sysctls.items()),
        *([SwapOff()] if settings.swap_off else []),
        journald_conf,
        Unit("systemd-journald", "journald runs with its limits", restart_on=(journald_conf,), enabled=False),
        SystemAccount(account.name, account.home),
    ]
