"""Typed settings of the keycloak role (the profile's `services.keycloak`): every default lives here."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from gpuaas.fieldtypes import Port, SecretRef
from gpuaas.safetext import ArtifactName, DnsLabel, PackageName, safe_text

Name = Annotated[
    str, safe_text(r"[a-z0-9][a-z0-9-]{0,62}", "a name of 1 to 63 of a-z, 0-9 and '-', starting with a letter or digit")
]
Heap = Annotated[str, safe_text(r"[0-9]+[mg]", "a heap size: digits followed by m or g")]


class RealmClient(BaseModel):
    """An OpenID Connect client of the platform realm."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: Name = Field(description="The client's id.")
    public: bool = Field(default=True, description="A public client (browser app, PKCE) or a confidential one.")
    host: DnsLabel = Field(description="DNS name (a record of the profile) the client's redirect URIs are on.")


class KeycloakSettings(BaseModel):
    """Keycloak, as the profile's `services.keycloak`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True, description="Deploy Keycloak (needs `artifacts.keycloak`: the official zip, pinned)."
    )
    http_port: Port = Field(default=8180, description="HTTP port on the host's address, behind the TLS edge.")
    management_port: Port = Field(default=9000, description="Management port: /health/ready, /metrics.")
    hostname: DnsLabel = Field(default="id", description="Public name under the DNS zone (`id` -> id.ZONE).")
    database: Name = Field(default="keycloak", description="The `services.postgres.databases` entry it uses.")
    admin_user: Name = Field(default="admin", description="Bootstrap admin of the master realm (first start only).")
    admin_password: SecretRef = Field(default="secret:keycloak_admin_password", description="Its password.")
    realm: Name = Field(default="platform", description="The platform realm, imported when it does not exist.")
    clients: list[RealmClient] = Field(
        default=[RealmClient(client_id="portal", host="portal")],
        description="OIDC clients of the realm; `host` is a name under the DNS zone.",
    )
    heap: Heap = Field(default="512m", description="JVM max heap (-Xmx).")
    java_package: PackageName = Field(
        default="openjdk-17-jre-headless", description="The JRE package Keycloak runs on."
    )
    artifact: ArtifactName = Field(
        default="keycloak", description="The profile's artifact: the official keycloak-X.zip."
    )
