"""Deploy of roles/redis: Debian's redis-server, its configuration include, the password and a restart."""

from __future__ import annotations

from pyinfra.api import deploy

from gpuaas.context import current_node, current_profile
from gpuaas.managed import converge
from roles.redis.state import desired


@deploy("Redis")
def redis() -> None:
    converge("Redis", desired(current_profile(), current_node()))
