"""roles/object_store's check of a profile: backups go to the store it runs."""

from __future__ import annotations

from collections.abc import Iterator

from gpuaas.errors import Problem
from gpuaas.groups import DATA
from gpuaas.profile import Profile


def problems(profile: Profile) -> Iterator[Problem]:
    store = profile.services.object_store
    if not store.enabled:
        return
    data = profile.group(DATA)
    expected = f"http://{data[0].address}:{store.s3_port}" if data else None
    if str(profile.backup.endpoint).rstrip("/") != expected:
        # Names the endpoint it must be (made of the data host's address and the store's port), never the one given.
        yield Problem("backup.endpoint", f"services.object_store is enabled: the backup endpoint is {expected}")
