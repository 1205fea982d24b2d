"""What roles/object_store reads back from the current host: the buckets SeaweedFS holds, from its master,
and whether the backup bucket is among them when the backups are kept here."""

from __future__ import annotations

from pyinfra import host

from gpuaas.profile import Host, Profile
from roles.object_store.config import shell
from roles.object_store.facts import SeaweedBuckets


def read_back(profile: Profile, node: Host) -> dict | None:
    buckets = host.get_fact(SeaweedBuckets, shell_command=shell(profile.services.object_store, "s3.bucket.list"))
    found = {"buckets": buckets}
    bucket = profile.backup.bucket
    kept_here = profile.backup.endpoint.host == str(node.address)
    if kept_here and bucket not in buckets:
        return {**found, "status": "failed", "message": f"the backup bucket {bucket} is not listed"}
    listed = f"buckets: {', '.join(buckets)}" if buckets else "no bucket listed"
    return {**found, "status": "ok", "message": f"SeaweedFS answering; {listed}"}
