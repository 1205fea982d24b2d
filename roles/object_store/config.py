"""The files roles/object_store writes on a host, computed from the profile."""

from __future__ import annotations

import json
from pathlib import Path

from gpuaas.forwarding import LOOPBACK, Forward, forward_units
from gpuaas.profile import Host, Profile
from gpuaas.secrets import Secret, resolve
from gpuaas.templating import render_template
from roles.object_store.settings import GRPC_OFFSET, ObjectStoreSettings

TEMPLATES = Path(__file__).parent / "templates"
UNIT = "/etc/systemd/system/seaweedfs.service"
S3_CONFIG = "/etc/seaweedfs/s3.json"
PROGRAM_LINK = "/usr/local/bin/weed"


def settings_for(profile: Profile) -> ObjectStoreSettings:
    return profile.services.object_store


def context(profile: Profile, node: Host) -> dict:
    return {
        "settings": settings_for(profile),
        "program": PROGRAM_LINK,
        "loopback": LOOPBACK,
        "grpc_offset": GRPC_OFFSET,
    }


def s3_forward(profile: Profile, node: Host) -> Forward:
    """The S3 API on the host's profile address: the one SeaweedFS port other hosts reach. Every
    SeaweedFS server, the S3 gateway included, listens on loopback: the gateway's gRPC port takes new
    identities from anyone who connects, and the others check no one."""
    return Forward(
        "seaweedfs-s3",
        str(node.address),
        settings_for(profile).s3_port,
        "seaweedfs.service",
        "SeaweedFS S3 API: requests signed with the backup identity's keys (s3.json) only.",
        "object_store",
    )


def rendered_files(profile: Profile, node: Host) -> dict[str, str]:
    """The units (the S3 identities hold the keys: render never writes them); nothing when disabled."""
    if not settings_for(profile).enabled:
        return {}
    unit = render_template(str(TEMPLATES / "seaweedfs.service.j2"), context(profile, node))
    return {UNIT: unit, **forward_units(s3_forward(profile, node))}


def local_url(port: int, path: str = "/") -> str:
    """The URL of a SeaweedFS server's HTTP port, as the host itself reaches it."""
    return f"http://{LOOPBACK}:{port}{path}"


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


def shell(settings: ObjectStoreSettings, command: str) -> str:
    """A `weed shell` command against the host's master and filer, on loopback. The filer is named: left
    to the master, the shell finds none for some seconds after a restart, until the filer has registered
    ("dial tcp: missing address") even though it already answers."""
    return (
        f"echo '{command}' | {PROGRAM_LINK} shell -master={LOOPBACK}:{settings.master_port}"
        f" -filer={LOOPBACK}:{settings.filer_port}"
    )
