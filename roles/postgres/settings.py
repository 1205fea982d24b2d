"""Typed settings of the postgres role (the profile's `services.postgres`): every default lives here."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gpuaas.fieldtypes import Port, SecretRef
from gpuaas.safetext import safe_text

Identifier = Annotated[
    str, safe_text(r"[a-z_][a-z0-9_]{0,62}", "an identifier of 1 to 63 of a-z, 0-9 and '_', not starting with a digit")
]


class Database(BaseModel):
    """A database and the login role that owns it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Identifier = Field(description="Database name; also the owner role's name.")
    password: SecretRef = Field(description="Reference to the owner role's password.")


class PostgresSettings(BaseModel):
    """PostgreSQL from Debian, as the profile's `services.postgres`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[15] = Field(default=15, description="Major version (Debian bookworm's).")
    port: Port = Field(default=5432, description="Port, on the host's profile address and loopback.")
    databases: list[Database] = Field(
        default=[
            Database(name="platform", password="secret:pg_platform_password"),
            Database(name="temporal", password="secret:pg_temporal_password"),
            Database(name="temporal_visibility", password="secret:pg_temporal_visibility_password"),
            Database(name="keycloak", password="secret:pg_keycloak_password"),
        ],
        description="Databases, each owned by a login role of the same name.",
    )
    max_connections: int = Field(default=200, ge=10, le=10000, description="max_connections.")
    shared_buffers_share: float = Field(
        default=0.25, gt=0, le=0.5, description="shared_buffers as a share of host memory."
    )
    effective_cache_share: float = Field(
        default=0.75, gt=0, le=0.9, description="effective_cache_size as a share of host memory."
    )
