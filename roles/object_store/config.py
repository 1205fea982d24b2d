"""The files roles/object_store writes on a host, computed from the profile."""

from __future__ import annotations

import json
from pathlib import Path

from gpuaas.profile import Host, Profile
from gpuaas.secrets import Secret, resolve
from gpuaas.templating import render_template
from roles.object_store.settings import ObjectStoreSettings

TEMPLATES = Path(__file__).parent / "templates"
UNIT = "/etc/systemd/system/seaweedfs.service"
S3_CONFIG = "/etc/seaweedfs/s3.json"
PROGRAM_LINK = "/usr/local/bin/weed"


def settings_for(profile: Profile) -> ObjectStoreSettings:
    return profile.services.object_store


def context(profile: Profile, node: Host) -> dict:
    return {"settings": settings_for(profile), "address": str(node.address), "program": PROGRAM_LINK}


def rendered_files(profile: Profile, node: Host) -> dict[str, str]:
    """The unit (the S3 identities hold the keys: render never writes them); nothing when disabled."""
    if not settings_for(profile).enabled:
        return {}
    return {UNIT: render_template(str(TEMPLATES / "seaweedfs.service.j2"), context(profile, node))}


def profile_identities(profile: Profile) -> Secret:
    """s3_identities with the profile's backup credentials."""
    backup = profile.backup
    return s3_identities(resolve(profile, backup.access_key_id), resolve(profile, backup.secret_access_key))


def s3_identities(access_key_id: Secret, secret_access_key: Secret) -> Secret:
    """The S3 identities file: one identity with the backup credentials. A Secret: it holds them."""
    identity = {
        "name": "backup",
        "credentials": [{"accessKey": access_key_id.reveal(), "secretKey": secret_access_key.reveal()}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    return Secret("backup credentials (s3.json)", json.dumps({"identities": [identity]}, indent=2) + "\n")


def shell(settings: ObjectStoreSettings, address: str, command: str) -> str:
    """A `weed shell` command against the host's master."""
    return f"echo '{command}' | {PROGRAM_LINK} shell -master={address}:{settings.master_port}"
