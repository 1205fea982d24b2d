"""Deploy of roles/object_store: the pinned `weed`, its account, S3 identities, units and the backup bucket."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, server

from filters.jinja import jinja_env_kwargs
from gpuaas.context import current_node, current_profile
from gpuaas.forwarding import forwarded
from gpuaas.operations import install_pinned, secret_file, service_account, service_running
from gpuaas.probe import in_place
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
    shell,
)
from roles.object_store.facts import SeaweedBuckets
from roles.object_store.state import probes


@deploy("Object store (SeaweedFS S3)")
def object_store() -> None:
    profile, node = current_profile(), current_node()
    settings = settings_for(profile)
    if in_place("the object store", probes(profile, node)):
        return
    linked = install_pinned(profile, settings.artifact, PROGRAM_LINK)

    service_account("seaweedfs", home=settings.data_dir, private_dirs=(settings.data_dir,))
    credentials = secret_file(
        name=f"Ensure {S3_CONFIG} holds the backup identity",
        path=S3_CONFIG,
        secret=profile_identities(profile),
        mode="640",
        group="seaweedfs",
    )
    unit = files.template(
        name=f"Ensure {UNIT} is rendered",
        src=str(TEMPLATES / "seaweedfs.service.j2"),
        dest=UNIT,
        mode="644",
        jinja_env_kwargs=jinja_env_kwargs(),
        **context(profile, node),
    )
    # Any HTTP answer from the S3 gateway (403 without credentials) means it is up.
    service_running(
        "seaweedfs",
        changed=[credentials, unit, linked],
        unit=unit,
        seconds=60,
        ready=f"curl -s -o /dev/null --max-time 2 {local_url(settings.s3_port)}",
    )
    forwarded(s3_forward(profile, node))

    bucket = profile.backup.bucket
    server.shell(
        name=f"Ensure bucket {bucket} exists",
        commands=[shell(settings, f"s3.bucket.create -name {bucket}")],
        _if=lambda: bucket not in host.get_fact(SeaweedBuckets, shell_command=shell(settings, "s3.bucket.list")),
    )
