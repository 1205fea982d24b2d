"""What roles/gpu writes on a GPU host that does not depend on the host's own archive (used by render).
The apt source names the host's mirror and release, so it is written by the deploy only."""

from __future__ import annotations

from gpuaas.profile import Host, Profile
from roles.gpu.driver import (
    NOUVEAU_BLACKLIST,
    PREFERENCES,
    UNATTENDED,
    driver_packages,
    nouveau_blacklist_text,
    preferences_text,
    unattended_text,
)


def rendered_files(profile: Profile, node: Host) -> dict[str, str]:
    """The nouveau blacklist (unless the driver is preinstalled) and, with the distro method, the pins and
    unattended-upgrades' blacklist (Debian's package names)."""
    settings = profile.role_settings("gpu", node)
    method = settings.driver.method
    if node.gpu is None or method == "preinstalled":
        return {}
    files = {NOUVEAU_BLACKLIST: nouveau_blacklist_text()}
    if method == "distro":
        files[PREFERENCES] = preferences_text(driver_packages(settings.driver, "debian").pins)
        files[UNATTENDED] = unattended_text()
    return files
