"""Typed settings of the nats role (the profile's `services.nats`): every default lives here."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gpuaas.fieldtypes import Port, SecretRef


class NatsSettings(BaseModel):
    """NATS server with JetStream, as the profile's `services.nats`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: Port = Field(default=4222, description="Client port, bound to the host's profile address.")
    monitor_port: Port = Field(default=8222, description="HTTP monitoring port (/healthz, /varz).")
    user: str = Field(default="platform", pattern=r"^[A-Za-z0-9_-]+$", description="The one client user.")
    password: SecretRef = Field(default="secret:nats_password", description="Reference to the user's password.")
    store_dir: str = Field(default="/var/lib/nats/jetstream", pattern=r"^/", description="JetStream file store.")
    max_memory_store: str = Field(default="256M", pattern=r"^[0-9]+[KMGT]?$", description="JetStream memory limit.")
    max_file_store: str = Field(default="10G", pattern=r"^[0-9]+[KMGT]?$", description="JetStream disk limit.")
    artifact: str = Field(default="nats-server", description="The profile's artifact that ships nats-server.")
