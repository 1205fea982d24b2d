"""Deploy of roles/object_store: the pinned `weed`, its account, S3 identities, units and the backup bucket."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import server

from gpuaas.context import current_node, current_profile
from gpuaas.managed import Applied, converge
from roles.object_store.config import settings_for, shell
from roles.object_store.facts import SeaweedBuckets
from roles.object_store.state import desired


@deploy("Object store (SeaweedFS S3)")
def object_store() -> None:
    profile, node = current_profile(), current_node()
    settings, bucket = settings_for(profile), profile.backup.bucket

    def steps(applied: Applied) -> None:
        """Create the backup bucket when `weed shell` does not list it (read when the step runs)."""
        server.shell(
            name=f"Ensure bucket {bucket} exists",
            commands=[shell(settings, f"s3.bucket.create -name {bucket}")],
            _if=lambda: bucket not in host.get_fact(SeaweedBuckets, shell_command=shell(settings, "s3.bucket.list")),
        )

    converge("the object store", desired(profile, node), steps)
