"""The whole desired state of roles/object_store as probes, checked in one round trip (see gpuaas.probe)."""

from __future__ import annotations

import shlex

from gpuaas.operations import pinned_program_probe
from gpuaas.probe import Probe, account_probe, owned_files_probe, services_probe
from gpuaas.profile import Host, Profile
from roles.object_store.config import PROGRAM_LINK, S3_CONFIG, UNIT, profile_identities, rendered_files, settings_for


def probes(profile: Profile, node: Host) -> list[Probe]:
    identities = profile_identities(profile)
    settings, bucket = settings_for(profile), profile.backup.bucket
    # A bucket is a directory of the filer's /buckets: asking the filer is much quicker than `weed shell`.
    bucket_url = f"http://{node.address}:{settings.filer_port}/buckets/{bucket}/"
    return [
        pinned_program_probe(profile, settings.artifact, PROGRAM_LINK),
        account_probe("seaweedfs", (settings.data_dir,)),
        owned_files_probe(
            "files",
            {
                S3_CONFIG: (identities.reveal(), "640", "root", "seaweedfs"),
                UNIT: (rendered_files(profile, node)[UNIT], "644", "root", "root"),
            },
        ),  # fmt: skip
        services_probe(running=["seaweedfs"], enabled=["seaweedfs"]),
        Probe("bucket", f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 {shlex.quote(bucket_url)}", "200"),
    ]
