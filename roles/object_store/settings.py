"""Typed settings of the object_store role (the profile's `services.object_store`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from gpuaas.safetext import AbsolutePath

#: The offset of each SeaweedFS server's gRPC port from its HTTP port (SeaweedFS's own convention).
GRPC_OFFSET = 10000
#: A port whose gRPC twin (+ GRPC_OFFSET) is a port too.
InternalPort = Annotated[int, Field(ge=1, le=65535 - GRPC_OFFSET)]


class ObjectStoreSettings(BaseModel):
    """SeaweedFS on the data host, serving the S3 API the backups go to (local and dev); other
    environments leave it off and point `backup.endpoint` at an external S3-compatible store."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=False, description="Run SeaweedFS on the data host as the backup target.")
    s3_port: InternalPort = Field(
        default=8333,
        description="S3 API port on the host's profile address (signed requests of the backup identity only); "
        "the gateway itself, and its gRPC port (+ 10000), are on loopback.",
    )
    master_port: InternalPort = Field(default=9333, description="Master port, on loopback (gRPC: + 10000).")
    volume_port: InternalPort = Field(default=8080, description="Volume server port, on loopback (gRPC: + 10000).")
    filer_port: InternalPort = Field(default=8888, description="Filer port, on loopback (gRPC: + 10000).")
    data_dir: AbsolutePath = Field(default="/var/lib/seaweedfs", description="Where the data lives.")
    volume_size_limit_mb: int = Field(default=1024, ge=64, description="Size of one volume before a new one.")
    artifact: str = Field(default="seaweedfs", description="The profile's artifact that ships `weed`.")
