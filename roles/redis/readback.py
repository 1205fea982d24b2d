"""What roles/redis reads back from the current host: Redis's version and readiness, from the running
server (the password read on the host)."""

from __future__ import annotations

from pyinfra import host

from gpuaas.profile import Host, Profile
from roles.redis.config import AUTH
from roles.redis.facts import RedisInfo


def read_back(profile: Profile, node: Host) -> dict | None:
    info = host.get_fact(RedisInfo, port=profile.services.redis.port, auth_file=AUTH)
    version = info.get("redis_version") if info else None
    found = {"version": version, "ready": info is not None}
    if info is None:
        return {**found, "status": "failed", "message": "the server does not answer"}
    return {**found, "status": "ok", "message": f"Redis {version}, answering"}
