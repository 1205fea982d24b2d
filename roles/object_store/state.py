"""The whole desired state of roles/object_store as probes, checked in one round trip (see gpuaas.probe)."""

from __future__ import annotations

import shlex

from gpuaas.forwarding import forward_sockets
from gpuaas.operations import pinned_program_probe
from gpuaas.probe import Probe, account_probe, owned_files_probe, services_probe
from gpuaas.profile import Host, Profile
from roles.object_store.config import (
    PROGRAM_LINK,
    S3_CONFIG,
    local_url,
    profile_identities,
    rendered_files,
    s3_forward,
    settings_for,
)


def probes(profile: Profile, node: Host) -> list[Probe]:
    identities = profile_identities(profile)
    settings, bucket = settings_for(profile), profile.backup.bucket
    # A bucket is a directory of the filer's /buckets: asking the filer is much quicker than `weed shell`.
    bucket_url = local_url(settings.filer_port, f"/buckets/{bucket}/")
    units = {path: (content, "644", "root", "root") for path, content in rendered_files(profile, node).items()}
    units_running = ["seaweedfs", *forward_sockets([s3_forward(profile, node)])]
    return [
        pinned_program_probe(profile, settings.artifact, PROGRAM_LINK),
        account_probe("seaweedfs", (settings.data_dir,)),
        owned_files_probe(
            "files",
            {
                S3_CONFIG: (identities.reveal(), "640", "root", "seaweedfs"),
                **units,
            },
        ),
        services_probe(running=units_running, enabled=units_running),
        Probe("bucket", f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 {shlex.quote(bucket_url)}", "200"),
    ]
