"""The evidence packet: what a readback found in an environment, item by item, each with a status.

The packet is versioned (`schema`); its JSON schema is generated from these models and kept in the
repository as gpuaas/evidence/schema/packet-v1.json (`gpuaas evidence schema` writes it again). A change
to these models that a reader of an older packet would trip on is a new version.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_ID = "https://gpuaas.dev/schemas/evidence-packet/v1"
SCHEMA_VERSION = "gpuaas.evidence/v1"
SCHEMA_PATH = Path(__file__).parent / "schema" / "packet-v1.json"


class Status(str, Enum):
    """What a readback item found. Ordered from best to worst: a packet's status is its worst item's."""

    #: Read back and as the profile wants it.
    OK = "ok"
    #: Read back and different from the profile (a version or sha256 other than the pin, a count).
    DRIFT = "drift"
    #: Not checked or not installed, with the reason (a role not deployed, a store not reachable).
    BLOCKED = "blocked"
    #: Read back and broken (not running, not ready, sealed, a failed drill).
    FAILED = "failed"


RANK = {Status.OK: 0, Status.BLOCKED: 1, Status.DRIFT: 2, Status.FAILED: 3}


def worst(statuses) -> Status:
    """The worst of `statuses` (ok when there are none)."""
    return max((Status(s) for s in statuses), key=RANK.__getitem__, default=Status.OK)


class Layer(str, Enum):
    """The packet's sections, in the order the summary and the page show them."""

    EDGE = "edge"
    CONTROL_PLANE = "control plane"
    IDENTITY = "identity"
    DATA_SERVICES = "data services"
    RUNTIME = "runtime"
    GPU = "GPU"
    BACKUPS = "backups"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Model):
    sha: str = Field(
        description="`git rev-parse HEAD` of the collection the readback ran from ('unknown' outside git)."
    )
    dirty: bool = Field(description="Whether tracked files differed from that commit.")


class ProfileReadback(Model):
    name: str = Field(description="The environment.")
    source: str = Field(description="The profile's file, as the repository names it.")
    digest: str = Field(
        description="sha256 over the profile's rendered form (`gpuaas render`): every file's path and sha256, "
        "sorted. Holds no secret."
    )


class HostReadback(Model):
    name: str
    address: str
    groups: list[str]
    os: str | None = Field(description="PRETTY_NAME of /etc/os-release; null when the host could not be read.")
    kernel: str | None = Field(description="`uname -r`.")


class Item(Model):
    """One thing read back: a service on a host, a DNS name, an artifact's program, the newest backup set."""

    layer: Layer
    name: str = Field(description="What was read back (`PostgreSQL`, `artifact nats-server`, `portal.example.com`).")
    host: str | None = Field(description="The host it was read on; null for what the controller read.")
    status: Status
    message: str = Field(description="What was found, in words; for anything but ok, why.")
    observed: dict = Field(default={}, description="The values read back, as the role's readback returned them.")
    pinned: bool = Field(
        default=False, description="Whether it compares what is installed with a pin (the drift gate's items)."
    )


class InstalledProgram(Model):
    host: str
    path: str = Field(description="Where the program's link points on the host.")
    version: str | None = Field(description="The version directory it is installed under.")
    sha256: str | None = Field(description="sha256 of the program file on the host, as the host computed it.")
    status: Status


class ArtifactReadback(Model):
    name: str
    version: str = Field(description="The pinned version.")
    sha256: str = Field(description="The pinned sha256 of the artifact (the file fetched and verified).")
    source: str = Field(description="Where it comes from: a wheel requirement or a URL.")
    program_sha256: str | None = Field(
        description="sha256 of the program the artifact ships, as the controller extracted it; null when not read."
    )
    installed: list[InstalledProgram]
    status: Status
    message: str


class Inputs(Model):
    uat_package: str | None = Field(description="The UAT package link the operator passed in (GPUAAS_UAT_PACKAGE).")
    portal_build: str | None = Field(description="The portal build id the operator passed in (GPUAAS_PORTAL_BUILD).")


class RollbackPoint(Model):
    """What a rollback of this environment returns to."""

    packet: str = Field(description="The earlier packet's envelope, under build/ENV/evidence/.")
    read_at: str = Field(description="When that packet was read back.")
    source_sha: str = Field(description="The collection's commit it was read back from: the commit to deploy again.")
    artifacts: dict[str, str] = Field(description="Each artifact it proved, by name, with its sha256.")
    changed: list[str] = Field(description="What this packet's environment runs that the rollback point did not.")


class Packet(Model):
    """An environment's evidence packet."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"$id": SCHEMA_ID, "$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    schema_: Literal["gpuaas.evidence/v1"] = Field(alias="schema", description="The packet format's version.")
    environment: str
    read_at: str = Field(description="When the readback ended, UTC, ISO 8601 (`2026-12-02T21:40:00Z`).")
    status: Status = Field(description="The worst status of every item and artifact.")
    source: Source
    profile: ProfileReadback
    inputs: Inputs
    hosts: list[HostReadback]
    artifacts: list[ArtifactReadback]
    items: list[Item]
    blocked: list[str] = Field(
        description="The residual blocked items: everything that could not be checked or installed, with the reason."
    )
    rollback: RollbackPoint | None = Field(
        default=None,
        description="The newest earlier green packet of the environment that verifies with its key: what a "
        "rollback returns to. Null when there is none (nothing proven to return to) or the packet is unsigned.",
    )

    def json_text(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), indent=2, sort_keys=True) + "\n"

    def by_layer(self) -> dict[Layer, list[Item]]:
        """The items of each layer, in the layers' order (every layer, even an empty one)."""
        return {layer: [item for item in self.items if item.layer is layer] for layer in Layer}

    def drifted(self) -> list[str]:
        """The lines the drift gate fails on: everything installed that differs from its pin."""
        return [
            f"{item.name}{f' on {item.host}' if item.host else ''}: {item.message}"
            for item in self.items
            if item.pinned and item.status is Status.DRIFT
        ]


def json_schema() -> dict:
    return Packet.model_json_schema(by_alias=True)


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema_text())
    return path


def validate(document: dict, schema_path: Path = SCHEMA_PATH) -> list[str]:
    """Every way `document` breaks the schema kept in the repository, as `field: reason` lines."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(json.loads(schema_path.read_text()))
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(packet)'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    ]
