"""Everything roles/gpu keeps on a GPU host, declared once (see gpuaas.managed): nouveau blacklisted with
the initramfs updated and the PCI id database installed, whoever owns the driver; and with the `distro`
method the role's own apt source and preferences, unattended-upgrades kept off the driver, the driver's
packages at the pinned branch and held, the running kernel's headers, the module built by DKMS and
nvidia-persistenced enabled. A host whose profile entry declares no GPU gets nothing; neither does one
whose driver is `preinstalled`."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.apt import AptSources
from pyinfra.facts.server import LinuxDistribution
from pyinfra.operations import server, systemd
from pyinfra.operations.util import any_changed

from gpuaas.managed import Applied, Content, Item, Packages, live_drift
from gpuaas.probe import Probe
from gpuaas.profile import Host, Profile
from roles.gpu.driver import (
    NOUVEAU_BLACKLIST,
    PREFERENCES,
    SOURCES,
    UNATTENDED,
    Distribution,
    DriverPackages,
    driver_packages,
    nouveau_blacklist_text,
    preferences_text,
    sources_text,
    unattended_text,
)
from roles.gpu.settings import Driver, GpuSettings

APT_GET = (
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --allow-change-held-packages "
    "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
)
HEADERS = 'p="linux-headers-$(uname -r)"'
HEADERS_AVAILABLE = f"{HEADERS}; apt-cache policy \"$p\" 2>/dev/null | grep -q 'Candidate: [0-9]'"


def settings_for(profile: Profile, node: Host) -> GpuSettings:
    return profile.role_settings("gpu", node)


@dataclass(eq=False)
class NouveauBlacklisted(Content):
    """nouveau blacklisted by the role's modprobe file, and the initramfs rebuilt when that file changed
    (hosts without initramfs-tools, such as containers, have none to rebuild)."""

    def apply(self, applied: Applied) -> OperationMeta:
        written = super().apply(applied)
        server.shell(
            name="Ensure the initramfs keeps nouveau out",
            commands=["if command -v update-initramfs >/dev/null; then update-initramfs -u; fi"],
            _if=any_changed(written),
        )
        return written


@dataclass(eq=False)
class HeldPackages:
    """The driver's packages installed at the pinned versions and held (dpkg status `hi`). apt's lists are
    refreshed first when the role's source or preferences changed; the install may change held packages,
    which is how a new pin is rolled out."""

    wanted: DriverPackages
    #: Package -> the version pattern it must match.
    versions: dict[str, str]
    refresh_on: tuple[Item, ...]

    @property
    def name(self) -> str:
        return f"held packages {' '.join(self.wanted.packages)}"

    def probes(self) -> list[Probe]:
        names = " ".join(shlex.quote(p) for p in self.wanted.packages)
        command = f"dpkg-query -W -f='${{Package}} ${{Version}} ${{db:Status-Abbrev}}\\n' {names} 2>/dev/null"
        # dpkg-query lists packages by name, whatever the order asked.
        wanted = " ".join(f"{re.escape(p)} {self.versions[p]} hi" for p in sorted(self.wanted.packages))
        return [Probe(self.name, command, wanted, pattern=True)]

    def apply(self, applied: Applied) -> OperationMeta:
        server.shell(
            name="Ensure apt's lists include the driver's archive components",
            commands=["apt-get update -q"],
            _if=any_changed(*applied.changed(self.refresh_on)),
        )
        names = " ".join(shlex.quote(p) for p in self.wanted.packages)
        return server.shell(
            name=f"Ensure {', '.join(self.wanted.packages)} are installed at the pinned branch and held",
            commands=[f"{APT_GET} {names}", f"apt-mark hold {names}"],
            _if=lambda: live_drift(self),
        )


@dataclass(eq=False)
class KernelHeaders:
    """The running kernel's headers installed, so DKMS can build the module; where the archive has none
    for the running kernel (a custom or cloud kernel), that is what the probe accepts and the readback
    reports."""

    @property
    def name(self) -> str:
        return "kernel headers of the running kernel"

    def probes(self) -> list[Probe]:
        command = (
            f"if {HEADERS_AVAILABLE}; then dpkg-query -W -f='${{db:Status-Abbrev}}' \"$p\" 2>/dev/null "
            "|| echo missing; else echo unavailable; fi"
        )
        return [Probe(self.name, command, "ii|unavailable", pattern=True)]

    def apply(self, applied: Applied) -> OperationMeta:
        return server.shell(
            name="Ensure the running kernel's headers are installed",
            commands=[f'{HEADERS}; {APT_GET} "$p"'],
            _if=lambda: live_drift(self),
        )


@dataclass(eq=False)
class ModuleBuilt:
    """DKMS has built the driver's module for the running kernel (where its headers are installed)."""

    version: str

    @property
    def name(self) -> str:
        return "nvidia kernel module built"

    def probes(self) -> list[Probe]:
        command = (
            'if [ -d "/lib/modules/$(uname -r)/build" ]; then modinfo -F version nvidia-current 2>/dev/null '
            "|| modinfo -F version nvidia 2>/dev/null || echo unbuilt; else echo no-headers; fi"
        )
        return [Probe(self.name, command, f"{self.version}|no-headers", pattern=True)]

    def apply(self, applied: Applied) -> OperationMeta:
        return server.shell(
            name="Ensure DKMS has built the NVIDIA module for the running kernel",
            commands=['dkms autoinstall -k "$(uname -r)"'],
            _if=lambda: live_drift(self),
        )


@dataclass(eq=False)
class Persistenced:
    """nvidia-persistenced enabled, and running once the driver is loaded (before the reboot that loads it,
    there is nothing for it to keep)."""

    unit: str = "nvidia-persistenced"

    @property
    def name(self) -> str:
        return f"service {self.unit}"

    def probes(self) -> list[Probe]:
        command = (
            f"systemctl is-enabled {self.unit}; if [ -r /proc/driver/nvidia/version ]; then "
            f"systemctl is-active {self.unit}; else echo no-driver; fi"
        )
        return [Probe(self.name, command, "enabled (active|no-driver)", pattern=True)]

    def apply(self, applied: Applied) -> OperationMeta:
        enabled = systemd.service(name=f"Ensure {self.unit} is enabled", service=self.unit, running=None, enabled=True)
        server.shell(
            name=f"Ensure {self.unit} runs once the driver is loaded",
            commands=[f"systemctl start {self.unit}"],
            _if=lambda: live_drift(self),
        )
        return enabled


def distribution() -> Distribution:
    """The host's distribution family, codename and archive, as its own sources name them."""
    found = host.get_fact(LinuxDistribution)
    meta = found.get("release_meta", {})
    family = "ubuntu" if meta.get("ID") == "ubuntu" else "debian"
    codename = meta.get("VERSION_CODENAME") or meta.get("UBUNTU_CODENAME") or ""
    sources = [s for s in host.get_fact(AptSources) if s.get("type") == "deb"]
    release = next((s["url"] for s in sources if s.get("distribution") == codename), None)
    security = next((s["url"] for s in sources if s.get("distribution") == f"{codename}-security"), None)
    default = "http://archive.ubuntu.com/ubuntu" if family == "ubuntu" else "http://deb.debian.org/debian"
    return Distribution(family, codename, (release or default).rstrip("/"), security and security.rstrip("/"))


def branch_pattern(driver: Driver) -> str:
    """Any version of the driver's branch, as a regular expression."""
    return rf"{driver.branch}\.\S+"


def version_pattern(driver: Driver) -> str:
    """The driver's pinned version, or any of its branch where none is pinned, as a regular expression."""
    return re.escape(driver.version) if driver.version else branch_pattern(driver)


def package_versions(driver: Driver, wanted: DriverPackages) -> dict[str, str]:
    """Package -> the version pattern the probe accepts: the pinned version (and any Debian revision) for
    the driver's own packages, the branch for those of their own release cycle (nvidia-persistenced)."""
    exact = rf"{version_pattern(driver)}-\S+" if driver.version else branch_pattern(driver)
    return {p: branch_pattern(driver) if p == "nvidia-persistenced" else exact for p in wanted.packages}


def distro_driver(settings: GpuSettings, found: Distribution) -> list[Item]:
    """The distro method's items."""
    driver = settings.driver
    wanted = driver_packages(driver, found.family)
    sources = Content(SOURCES, sources_text(settings, found), what="the driver's archive components")
    preferences = Content(PREFERENCES, preferences_text(wanted.pins), what=f"the pin to driver branch {driver.branch}")
    items: list[Item] = [
        sources,
        preferences,
        Content(UNATTENDED, unattended_text(), what="unattended-upgrades' blacklist of the driver"),
        HeldPackages(wanted, package_versions(driver, wanted), (sources, preferences)),
    ]
    if driver.kernel_headers:
        items += [KernelHeaders(), ModuleBuilt(version_pattern(driver))]
    return items + ([Persistenced()] if driver.persistenced and found.family == "debian" else [])


def desired(profile: Profile, node: Host) -> list[Item]:
    """Every item of the role on `node`: nothing on a host without `gpu:` or with a preinstalled driver."""
    settings = settings_for(profile, node)
    if node.gpu is None or settings.driver.method == "preinstalled":
        return []
    blacklist = NouveauBlacklisted(NOUVEAU_BLACKLIST, nouveau_blacklist_text(), what="the nouveau blacklist")
    # The PCI id database: the detection fact names the GPUs' models from it.
    base: list[Item] = [blacklist, Packages(("pci.ids",))]
    if settings.driver.method == "operator":
        return base
    return [*base, *distro_driver(settings, distribution())]
