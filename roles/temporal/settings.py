"""Typed settings of the temporal role (the profile's `services.temporal`): every default lives here."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from gpuaas.fieldtypes import Port

Namespace = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{1,62}$")]


class TemporalSettings(BaseModel):
    """Temporal, as the profile's `services.temporal`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["dev", "server"] = Field(
        default="dev",
        description="`dev`: the temporal CLI's embedded server with a persistent SQLite file (local, dev, "
        "demo); `server`: temporal-server on PostgreSQL (staging, prod).",
    )
    port: Port = Field(default=7233, description="Frontend gRPC port.")
    ui_port: Port = Field(default=8233, description="Web UI port.")
    http_port: Port = Field(default=7243, description="HTTP API port.")
    metrics_port: Port = Field(default=7244, description="Prometheus /metrics port.")
    namespaces: list[Namespace] = Field(default=["platform"], description="Namespaces created at start.")
    db_file: str = Field(default="/var/lib/temporal/temporal.db", pattern=r"^/", description="SQLite file (dev).")
    artifact: str = Field(default="temporal", description="The profile's artifact that ships the temporal CLI.")
