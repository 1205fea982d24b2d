"""Typed settings of the temporal role (the profile's `services.temporal`): every default lives here."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gpuaas.fieldtypes import Port
from gpuaas.safetext import AbsolutePath, ArtifactName, safe_text

Namespace = Annotated[
    str,
    safe_text(
        r"[a-z0-9][a-z0-9._-]{1,62}",
        "a namespace of 2 to 63 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit",
    ),
]
Identifier = Annotated[
    str, safe_text(r"[a-z_][a-z0-9_]{0,62}", "an identifier of 1 to 63 of a-z, 0-9 and '_', not starting with a digit")
]


class TemporalSettings(BaseModel):
    """Temporal, as the profile's `services.temporal`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="Deploy Temporal (server mode needs its artifacts pinned).")
    mode: Literal["dev", "server"] = Field(
        default="dev",
        description="`dev`: the temporal CLI's embedded server with a persistent SQLite file (local, dev, "
        "demo); `server`: temporal-server on PostgreSQL (staging, prod).",
    )
    port: Port = Field(default=7233, description="Frontend gRPC port.")
    ui_port: Port = Field(default=8233, description="Web UI port (dev).")
    http_port: Port = Field(default=7243, description="Frontend HTTP API port.")
    metrics_port: Port = Field(default=7244, description="Prometheus /metrics port.")
    namespaces: list[Namespace] = Field(default=["platform"], description="Namespaces the deploy keeps registered.")
    db_file: AbsolutePath = Field(default="/var/lib/temporal/temporal.db", description="SQLite file (dev).")
    artifact: ArtifactName = Field(
        default="temporal", description="The profile's artifact that ships the temporal CLI."
    )
    # server mode
    server_artifact: ArtifactName = Field(
        default="temporal-server", description="Artifact with `temporal-server` (the release tarball; server)."
    )
    sql_tool_artifact: ArtifactName = Field(
        default="temporal-sql-tool", description="Artifact with `temporal-sql-tool`."
    )
    schema_artifact: ArtifactName = Field(
        default="temporal-schema", description="The release's source tarball, for its schema/ directory (server)."
    )
    database: Identifier = Field(default="temporal", description="`services.postgres.databases` entry (server).")
    visibility_database: Identifier = Field(
        default="temporal_visibility", description="Visibility database, likewise (server)."
    )
    history_shards: int = Field(
        default=512, ge=1, le=16384, description="numHistoryShards (server). Fixed once the cluster has started."
    )
    history_port: Port = Field(default=7234, description="History service gRPC port (server).")
    matching_port: Port = Field(default=7235, description="Matching service gRPC port (server).")
    worker_port: Port = Field(default=7239, description="Worker service gRPC port (server).")
    frontend_membership_port: Port = Field(default=6933, description="Frontend membership port (server).")
    history_membership_port: Port = Field(default=6934, description="History membership port (server).")
    matching_membership_port: Port = Field(default=6935, description="Matching membership port (server).")
    worker_membership_port: Port = Field(default=6939, description="Worker membership port (server).")

    def required_artifacts(self) -> dict[str, str]:
        """Setting name -> the artifact it names, for the artifacts this mode installs."""
        names = ("artifact", "server_artifact", "sql_tool_artifact", "schema_artifact")
        return {name: getattr(self, name) for name in (names if self.mode == "server" else names[:1])}
