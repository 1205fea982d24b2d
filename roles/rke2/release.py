"""The RKE2 release on the controller: the pinned tarball, checksum file and images, verified twice
(against their pins, then the tarball and images against the release's own checksum file)."""

from __future__ import annotations

from pathlib import Path

from pyinfra.api.exceptions import DeployError

from gpuaas import artifacts
from gpuaas.profile import Profile
from roles.rke2.settings import Rke2Settings


def missing_pins(profile: Profile, settings: Rke2Settings) -> list[str]:
    return [name for name in settings.required_artifacts().values() if name not in profile.artifacts]


def verified_release(profile: Profile, settings: Rke2Settings) -> dict[str, Path]:
    """Setting name -> the verified local file. Raises DeployError (before anything runs) when a pin is
    missing, a file does not match its pin, or the checksum file lists another sha256."""
    missing = missing_pins(profile, settings)
    if missing:
        raise DeployError(
            f"{profile.source}: artifacts {', '.join(missing)} are not pinned: pin the release's "
            "rke2.linux-amd64.tar.gz, sha256sum-amd64.txt and images archive (see roles/rke2/README.md)"
        )
    files = {setting: artifacts.verified(name, profile.artifacts[name])
             for setting, name in settings.required_artifacts().items()}  # fmt: skip
    if settings.install_method == "tarball":
        listed = dict(reversed(line.split(None, 1)) for line in files["checksums_artifact"].read_text().splitlines()
                      if line.strip())  # fmt: skip
        for setting in ("artifact", "images_artifact"):
            if setting in files:
                path, pin = files[setting], profile.artifacts[settings.required_artifacts()[setting]]
                if listed.get(path.name) != pin.sha256:
                    raise artifacts.ArtifactError(
                        f"artifacts.{settings.required_artifacts()[setting]}: {path.name} is listed in "
                        f"{files['checksums_artifact'].name} as {listed.get(path.name, 'missing')}, "
                        f"not {pin.sha256}; refusing to install it"
                    )
    return files
