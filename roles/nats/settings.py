"""Typed settings of the nats role (the profile's `services.nats`): every default lives here."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from gpuaas.fieldtypes import Port, SecretRef
from gpuaas.safetext import AbsolutePath, ArtifactName, safe_text

UserName = Annotated[str, safe_text(r"[A-Za-z0-9_-]+", "a user name of letters, digits, '_' and '-'")]
Size = Annotated[str, safe_text(r"[0-9]+[KMGT]?", "a size: digits, optionally followed by K, M, G or T")]


class NatsSettings(BaseModel):
    """NATS server with JetStream, as the profile's `services.nats`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: Port = Field(default=4222, description="Client port, bound to the host's profile address.")
    monitor_port: Port = Field(default=8222, description="HTTP monitoring port (/healthz, /varz), on loopback.")
    user: UserName = Field(default="platform", description="The one client user.")
    password: SecretRef = Field(default="secret:nats_password", description="Reference to the user's password.")
    store_dir: AbsolutePath = Field(default="/var/lib/nats/jetstream", description="JetStream file store.")
    max_memory_store: Size = Field(default="256M", description="JetStream memory limit.")
    max_file_store: Size = Field(default="10G", description="JetStream disk limit.")
    artifact: ArtifactName = Field(default="nats-server", description="The profile's artifact that ships nats-server.")
