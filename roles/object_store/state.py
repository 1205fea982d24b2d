"""Everything roles/object_store keeps on a data host, declared once: the deploy converges it and the
one-round-trip check reads it back (see gpuaas.managed)."""

from __future__ import annotations

import shlex

from gpuaas.managed import Account, Checked, Forwarded, Item, PinnedProgram, SecretFile, Service, Template
from gpuaas.profile import Host, Profile
from roles.object_store.config import (
    PROGRAM_LINK,
    S3_CONFIG,
    TEMPLATES,
    UNIT,
    context,
    local_url,
    profile_identities,
    s3_forward,
    settings_for,
)
from roles.object_store.settings import GRPC_OFFSET


def bucket_exists(profile: Profile) -> Checked:
    """The profile's backup bucket, created by the deploy's own step. A bucket is a directory of the
    filer's /buckets: asking the filer is much quicker than `weed shell`."""
    bucket = profile.backup.bucket
    url = local_url(settings_for(profile).filer_port, f"/buckets/{bucket}/")
    return Checked(
        f"bucket {bucket}", f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 {shlex.quote(url)}", "200"
    )


def desired(profile: Profile, node: Host) -> list[Item]:
    settings = settings_for(profile)
    program = PinnedProgram(profile, settings.artifact, PROGRAM_LINK)
    credentials = SecretFile(
        S3_CONFIG, profile_identities(profile), mode="640", group="seaweedfs", what="the backup identity"
    )
    unit = Template(UNIT, str(TEMPLATES / "seaweedfs.service.j2"), context(profile, node))
    # Any HTTP answer from the S3 gateway (403 without credentials) means it is up; the filer answers only
    # once the master has a leader, and the bucket step's `weed shell` needs both, the filer through its
    # gRPC port (after a restart the gateway answers some seconds before the filer, and the filer's HTTP
    # port before its gRPC one). gRPC speaks HTTP/2 only: any answer to one (415) means it listens.
    ready = (
        f"curl -s -o /dev/null --max-time 2 {local_url(settings.s3_port)} && "
        f"curl -s -o /dev/null --max-time 2 {local_url(settings.filer_port)} && "
        f"curl -s -o /dev/null --max-time 2 --http2-prior-knowledge {local_url(settings.filer_port + GRPC_OFFSET)}"
    )
    return [
        program,
        Account("seaweedfs", home=settings.data_dir, private_dirs=(settings.data_dir,)),
        credentials,
        unit,
        Service("seaweedfs", ready=ready, restart_on=(credentials, unit, program), unit_file=unit, seconds=60),
        Forwarded(s3_forward(profile, node)),
        bucket_exists(profile),
    ]
