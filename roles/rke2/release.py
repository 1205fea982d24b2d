"""The RKE2 release on the controller: the pinned tarball, checksum file, images and (with the `script`
method) install script, verified twice (against their pins, then the tarball and images against the
release's own checksum file)."""

from __future__ import annotations

import re
from pathlib import Path

from pyinfra.api.exceptions import DeployError

from gpuaas import artifacts
from gpuaas.profile import Profile
from roles.rke2.settings import Rke2Settings

#: An RKE2 release version (`v1.30.4+rke2r1`). It names paths and INSTALL_RKE2_VERSION on the hosts,
#: so nothing else is accepted (matched whole: `$` would let a trailing newline through).
RELEASE_VERSION = re.compile(r"v[0-9]+\.[0-9]+\.[0-9]+\+[a-z0-9]+")


def missing_pins(profile: Profile, settings: Rke2Settings) -> list[str]:
    return [name for name in settings.required_artifacts().values() if name not in profile.artifacts]


def release_version(profile: Profile, settings: Rke2Settings) -> str:
    """The pinned RKE2 version. Raises DeployError when it is not an RKE2 release version."""
    version = profile.artifacts[settings.artifact].version
    if not RELEASE_VERSION.fullmatch(version):
        raise DeployError(
            f"{profile.source}: artifacts.{settings.artifact}.version: is not an RKE2 release version "
            "(vMAJOR.MINOR.PATCH+rke2rN: 'v', three numbers joined by '.', '+' and a suffix of a-z and 0-9)"
        )
    return version


def verified_release(profile: Profile, settings: Rke2Settings) -> dict[str, Path]:
    """Setting name -> the verified local file. Raises DeployError (before anything runs) when a pin is
    missing, the version is not a release version, a file does not match its pin, or the checksum file
    lists another sha256."""
    missing = missing_pins(profile, settings)
    if missing:
        raise DeployError(
            f"{profile.source}: artifacts {', '.join(missing)} are not pinned: pin the release's "
            "rke2.linux-amd64.tar.gz, sha256sum-amd64.txt and images archive"
            f"{' and the install script' if settings.install_method == 'script' else ''} (see roles/rke2/README.md)"
        )
    release_version(profile, settings)
    names = settings.required_artifacts()
    files = {setting: artifacts.verified(name, profile.artifacts[name]) for setting, name in names.items()}
    listed = dict(
        reversed(line.split(None, 1)) for line in files["checksums_artifact"].read_text().splitlines() if line.strip()
    )
    for setting in ("artifact", "images_artifact"):
        if setting in files:
            path, pin = files[setting], profile.artifacts[names[setting]]
            if listed.get(path.name) != pin.sha256:
                raise artifacts.ArtifactError(
                    f"artifacts.{names[setting]}: {path.name} is listed in {files['checksums_artifact'].name} as "
                    f"{listed.get(path.name, 'missing')}, not {pin.sha256}; refusing to install it"
                )
    return files


def unpinned(profile: Profile) -> str | None:
    """Why the cluster cannot be deployed yet: the release artifacts the profile does not pin; None
    when every one is pinned."""
    from roles.rke2.config import first_server, settings_for

    missing = missing_pins(profile, settings_for(profile, first_server(profile)))
    if not missing:
        return None
    return f"artifacts {', '.join(missing)} are not pinned in {profile.source} (see roles/rke2/README.md)"
