"""Typed settings of the openbao role (the profile's `services.openbao`): every default lives here."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gpuaas.fieldtypes import WRITTEN_BY_DEPLOY, Port, SecretRef
from gpuaas.safetext import AbsolutePath, ArtifactName


class OpenBaoSettings(BaseModel):
    """OpenBao on each data host: one raft node, TLS on the API and cluster ports, Shamir unseal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: Port = Field(default=8200, description="API port (TLS), bound to the host's profile address.")
    cluster_port: Port = Field(default=8201, description="Raft and request-forwarding port (TLS).")
    data_dir: AbsolutePath = Field(default="/var/lib/openbao", description="Raft storage directory.")
    key_shares: int = Field(default=5, ge=1, le=16, description="Unseal key shares made at init.")
    key_threshold: int = Field(default=3, ge=1, le=16, description="Shares needed to unseal.")
    init_secret: SecretRef = Field(
        default="secret:openbao_init",
        description="Where init's output (unseal keys, root token; JSON by host) is kept. The deploy writes "
        "it at init, so its source must be `stored` or `file` then; any source can be read to unseal.",
        json_schema_extra=WRITTEN_BY_DEPLOY,
    )
    tls_cert: SecretRef | None = Field(
        default=None, description="PEM server certificate (chain) to use instead of the host's own CA."
    )
    tls_key: SecretRef | None = Field(default=None, description="PEM private key of `tls_cert`.")
    tls_days: int = Field(default=825, ge=30, description="Validity of a certificate issued by the host's CA.")
    renew_days: int = Field(default=30, ge=1, description="Reissue the host certificate this many days before expiry.")
    artifact: ArtifactName = Field(default="openbao", description="The profile's artifact that ships `bao`.")

    @model_validator(mode="after")
    def _consistent(self) -> OpenBaoSettings:
        if self.key_threshold > self.key_shares:
            raise ValueError("key_threshold must not be more than key_shares (the shares needed out of those made)")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give tls_cert and tls_key together (or neither, for the host's own CA)")
        if self.renew_days >= self.tls_days:
            raise ValueError("renew_days must be less than tls_days (renewal starts before the certificate ends)")
        return self
