"""What roles/object_store reads back from the current host: The buckets SeaweedFS holds, from its master."""

from __future__ import annotations

from pyinfra import host

from gpuaas.profile import Host, Profile
from roles.object_store.config import shell
from roles.object_store.facts import SeaweedBuckets


def read_back(profile: Profile, node: Host) -> dict | None:
    return {
        "buckets": host.get_fact(SeaweedBuckets, shell_command=shell(profile.services.object_store, "s3.bucket.list"))
    }
