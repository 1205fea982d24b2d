"""Typed settings of the redis role (the profile's `services.redis`): every default lives here."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gpuaas.fieldtypes import Port, SecretRef
from gpuaas.safetext import safe_text

Memory = Annotated[
    str, safe_text(r"[0-9]+[kKmMgG]?[bB]?", "a memory size: digits, optionally followed by k, m or g and b")
]


class RedisSettings(BaseModel):
    """Redis from Debian's redis-server, as the profile's `services.redis`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: Port = Field(default=6379, description="Port, bound to the host's profile address and loopback.")
    password: SecretRef = Field(default="secret:redis_password", description="Reference to the `requirepass` password.")
    appendonly: bool = Field(default=True, description="AOF persistence (RDB snapshots stay on as Debian sets them).")
    appendfsync: Literal["always", "everysec", "no"] = Field(default="everysec", description="AOF fsync policy.")
    maxmemory: Memory = Field(default="0", description="Memory limit; 0 is none.")
    maxmemory_policy: Literal[
        "noeviction",
        "allkeys-lru",
        "volatile-lru",
        "allkeys-lfu",
        "volatile-lfu",
        "allkeys-random",
        "volatile-random",
        "volatile-ttl",
    ] = Field(default="noeviction", description="What Redis does at the memory limit.")
