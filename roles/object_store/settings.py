"""Typed settings of the object_store role (the profile's `services.object_store`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gpuaas.fieldtypes import Port


class ObjectStoreSettings(BaseModel):
    """SeaweedFS on the data host, serving the S3 API the backups go to (local and dev); other
    environments leave it off and point `backup.endpoint` at an external S3-compatible store."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=False, description="Run SeaweedFS on the data host as the backup target.")
    s3_port: Port = Field(default=8333, description="S3 API port (its gRPC port is this + 10000).")
    master_port: Port = Field(default=9333, description="Master port (gRPC: + 10000).")
    volume_port: Port = Field(default=8080, description="Volume server port (gRPC: + 10000).")
    filer_port: Port = Field(default=8888, description="Filer port (gRPC: + 10000).")
    data_dir: str = Field(default="/var/lib/seaweedfs", pattern=r"^/", description="Where the data lives.")
    volume_size_limit_mb: int = Field(default=1024, ge=64, description="Size of one volume before a new one.")
    artifact: str = Field(default="seaweedfs", description="The profile's artifact that ships `weed`.")
