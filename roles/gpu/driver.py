"""What the `distro` driver method installs, per distribution family: the packages, the source packages
apt preferences pin, the archive components, and the texts of the role's apt, modprobe and unattended-
upgrades files. Pure: computed from the settings and the host's distribution."""

from __future__ import annotations

from dataclasses import dataclass

from roles.gpu.settings import Driver, GpuSettings

HEADER = "# Managed by gpuaas roles/gpu.\n"
SOURCES = "/etc/apt/sources.list.d/gpuaas-nvidia.sources"
PREFERENCES = "/etc/apt/preferences.d/gpuaas-nvidia"
UNATTENDED = "/etc/apt/apt.conf.d/51gpuaas-nvidia-unattended-upgrades"
NOUVEAU_BLACKLIST = "/etc/modprobe.d/gpuaas-blacklist-nouveau.conf"
DEBIAN_COMPONENTS = ("contrib", "non-free", "non-free-firmware")
UBUNTU_COMPONENTS = ("restricted", "multiverse")
#: Package name prefixes unattended-upgrades leaves alone (its blacklist takes regular expressions).
UNATTENDED_BLACKLIST = ("nvidia-", "libnvidia-", "libcuda1", "firmware-nvidia-", "linux-modules-nvidia-")


@dataclass(frozen=True)
class Distribution:
    """The host's distribution as the role needs it: its family (`debian` or `ubuntu`), codename and the
    archive its own sources name."""

    family: str
    codename: str
    mirror: str
    security_mirror: str | None = None


@dataclass(frozen=True)
class DriverPackages:
    """What the distro method installs and pins."""

    #: Installed and held.
    packages: tuple[str, ...]
    #: Source package -> apt preferences `Pin: version` pattern.
    pins: dict[str, str]


def driver_packages(driver: Driver, family: str) -> DriverPackages:
    """The packages of the driver's branch (and version), its kernel modules as chosen, and the
    persistence daemon, with the pins that keep apt on that branch."""
    exact = f"{driver.version}-*" if driver.version else f"{driver.branch}.*"
    branch = f"{driver.branch}.*"
    if family == "ubuntu":
        flavour = "-open" if driver.kernel_modules == "open" else ""
        server = f"{driver.branch}-server"
        return DriverPackages(
            packages=(f"nvidia-headless-{server}{flavour}", f"nvidia-utils-{server}"),
            pins={f"nvidia-graphics-drivers-{server}": exact},
        )
    modules = "nvidia-open-kernel-dkms" if driver.kernel_modules == "open" else "nvidia-kernel-dkms"
    packages = [modules, "nvidia-smi", "libcuda1"]
    pins = {"nvidia-graphics-drivers": exact, "nvidia-modprobe": branch}
    if driver.kernel_modules == "open":
        pins["nvidia-open-gpu-kernel-modules"] = exact
    if driver.persistenced:
        packages.append("nvidia-persistenced")
        pins["nvidia-persistenced"] = branch
    return DriverPackages(tuple(packages), pins)


def components(settings: GpuSettings, family: str) -> tuple[str, ...]:
    if settings.components is not None:
        return tuple(settings.components)
    return UBUNTU_COMPONENTS if family == "ubuntu" else DEBIAN_COMPONENTS


def sources_text(settings: GpuSettings, distribution: Distribution) -> str:
    """The role's own deb822 sources file: the components the driver comes from, for the host's release,
    its updates and (where the host names one) its security archive."""
    mirror = str(settings.mirror).rstrip("/") if settings.mirror else distribution.mirror
    parts = " ".join(components(settings, distribution.family))
    stanzas = [
        f"Types: deb\nURIs: {mirror}\nSuites: {distribution.codename} {distribution.codename}-updates\n"
        f"Components: {parts}\n"
    ]
    if distribution.security_mirror:
        stanzas.append(
            f"Types: deb\nURIs: {distribution.security_mirror}\nSuites: {distribution.codename}-security\n"
            f"Components: {parts}\n"
        )
    return HEADER + "\n".join(stanzas)


def preferences_text(pins: dict[str, str]) -> str:
    """apt preferences that hold every package built from each source package to its pinned versions,
    above any newer one the archive offers (priority 1001 also allows a downgrade to the pin)."""
    stanzas = [
        f"Package: src:{source}\nPin: version {pattern}\nPin-Priority: 1001\n" for source, pattern in pins.items()
    ]
    return HEADER + "\n".join(stanzas)


def unattended_text() -> str:
    """unattended-upgrades keeps its hands off the driver: a new one is rolled out by deploys/upgrade.py."""
    entries = "".join(f'    "{prefix}";\n' for prefix in UNATTENDED_BLACKLIST)
    return f"// {HEADER[2:]}Unattended-Upgrade::Package-Blacklist {{\n{entries}}};\n"


def nouveau_blacklist_text() -> str:
    """nouveau kept from binding the GPUs, whoever owns the NVIDIA driver."""
    return HEADER + "blacklist nouveau\noptions nouveau modeset=0\n"
