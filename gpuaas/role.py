"""The contract between the core and a role: one `Role` object, `ROLE` in roles/NAME/__init__.py, says
everything the core needs to know about the role. The core finds the roles by looking (gpuaas.discovery)
and never imports one by name.

A role's package `__init__.py` stays light: it imports its settings model and this module, nothing that
imports the profile, so the profile can read every role's settings model while it is itself being built.
The role's parts that do (its rendered files, deploy, desired state, readback, backup) are named as
`"module:attribute"` within the role's package, like entry points, and loaded on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from gpuaas.managed import Item
    from gpuaas.profile import Host, Profile


class Section(str, Enum):
    """Where a role's settings live in a profile."""

    #: `services.NAME`: one block for the environment, with `enabled` when the service can be turned off.
    SERVICES = "services"
    #: `roles.NAME`, overridden per host by `hosts[].roles.NAME`.
    ROLES = "roles"
    #: A section of the profile's own (`backup:`, `dns:`): the role reads it, the profile defines it.
    PROFILE = "profile"


class Phase(str, Enum):
    """When a site run converges a role: the baseline first, then the data services, then the cluster.
    Controller roles run from their own deploys (backup, restore, edge)."""

    BASELINE = "baseline"
    DATA = "data"
    CLUSTER = "cluster"
    CONTROLLER = "controller"


@dataclass(frozen=True)
class PostgresDatabase:
    """A database of roles/postgres a role keeps its state in: `field` is the setting naming it (the
    database is owned by the login role of the same name), `stop` the units stopped while it is restored.
    `when` says whether the role uses it under a profile (Temporal only in server mode)."""

    field: str
    stop: tuple[str, ...] = ()
    when: Callable[[BaseModel], bool] | None = None

    def used(self, settings: BaseModel) -> bool:
        return getattr(settings, "enabled", True) and (self.when is None or self.when(settings))


@dataclass(frozen=True)
class Role:
    """What the core knows about one role."""

    #: The role's package, `roles.redis` (pass `__name__`): its name is the last part.
    package: str
    #: What reports call it: `Redis`.
    title: str
    #: The host groups it is applied to (gpuaas.groups).
    applies_to: tuple[str, ...]
    phase: Phase
    #: Its position among the roles of its phase: lower converges first (a database before its users).
    order: int
    #: Its variables (defaults live there; its README's table is generated from it), and where they live.
    settings: type[BaseModel] | None = None
    section: Section | None = None
    #: `module:function(profile, node) -> {remote path: content}`: every non-secret file it writes.
    rendered_files: str | None = None
    #: `module:function()`: the pyinfra deploy that converges it on the current host.
    deploy: str | None = None
    #: `module:function(profile, node) -> [Item]`: everything it keeps on a host (gpuaas.managed).
    desired: str | None = None
    #: `module:function(profile, node) -> dict | None`: what it reads back from the current host, with
    #: `status` (ok, drift, blocked or failed) and `message` (what was found, in words).
    readback: str | None = None
    #: `module:function(profile) -> [{"name", "status", "message", "observed"}]`: what it reads back from
    #: the controller for the evidence packet (a controller role's readback).
    evidence: str | None = None
    #: The evidence packet's section its readbacks go in (gpuaas.evidence.packet.Layer's values).
    layer: str | None = None
    #: `module`: its part of a backup set (gpuaas.backup.service.ServiceBackup), when it keeps state.
    backup: str | None = None
    #: The databases of roles/postgres it keeps its state in.
    databases: tuple[PostgresDatabase, ...] = ()
    #: `module:function(profile) -> str | None`: why it cannot be deployed yet (an artifact not pinned).
    blocker: str | None = None
    #: `module:function(profile) -> iterable of gpuaas.errors.Problem`: its own checks of a profile.
    checks: str | None = None
    #: `module:function(profile, node) -> [gpuaas.listeners.Listener]`: every socket it listens on.
    listeners: str | None = None
    #: `module:function(profile) -> str`: what reports add to its title (`dev mode`).
    detail: str | None = None

    @property
    def name(self) -> str:
        return self.package.rpartition(".")[2]

    def part(self, reference: str | None) -> Any:
        """The module or attribute a `module:attribute` reference names, imported on first use."""
        if reference is None:
            return None
        module, _, attribute = reference.partition(":")
        loaded = importlib.import_module(f"{self.package}.{module}")
        return getattr(loaded, attribute) if attribute else loaded

    # --- what the core asks a role ----------------------------------------------------------------------

    def applies(self, node: Host) -> bool:
        return any(group in node.groups for group in self.applies_to)

    def settings_of(self, profile: Profile, node: Host | None = None) -> BaseModel | None:
        """Its effective settings: the profile's section, merged with the host's own for per-host roles."""
        if self.section is Section.SERVICES:
            return getattr(profile.services, self.name)
        if self.section is Section.ROLES and node is not None:
            return profile.role_settings(self.name, node)
        return None

    def label(self, profile: Profile) -> str:
        detail = self.part(self.detail)
        return f"{self.title} ({detail(profile)})" if detail else self.title

    def enabled(self, profile: Profile) -> bool:
        """Whether the profile turns it on (`services.NAME.enabled`; a role without the switch always is)."""
        return getattr(self.settings_of(profile), "enabled", True)

    def not_deployed_because(self, profile: Profile) -> str | None:
        """Why the profile leaves the role off, in words naming the field; None when it is deployed."""
        settings = self.settings_of(profile)
        if not self.enabled(profile):
            reason = f"{self.section.value}.{self.name}.enabled is false in {profile.source}"
            missing = [name for name in required_artifacts(settings).values() if name not in profile.artifacts]
            if missing:
                reason += f"; it needs artifacts {', '.join(missing)} pinned first"
            return reason
        blocker = self.part(self.blocker)
        return blocker(profile) if blocker else None

    def files(self, profile: Profile, node: Host) -> dict[str, str]:
        rendered = self.part(self.rendered_files)
        return rendered(profile, node) if rendered else {}

    def items(self, profile: Profile, node: Host) -> list[Item]:
        desired = self.part(self.desired)
        return desired(profile, node) if desired else []

    def deploy_function(self) -> Callable[[], None]:
        """Its pyinfra deploy: called on a host, it converges the role there."""
        return self.part(self.deploy)

    def read_back(self, profile: Profile, node: Host) -> dict | None:
        readback = self.part(self.readback)
        return readback(profile, node) if readback else None

    def evidence_items(self, profile: Profile) -> list[dict]:
        evidence = self.part(self.evidence)
        return evidence(profile) if evidence else []


def required_artifacts(settings: BaseModel) -> dict[str, str]:
    """Setting name -> artifact, for the artifacts a role's settings name (`required_artifacts()`, else
    its `artifact`)."""
    if hasattr(settings, "required_artifacts"):
        return settings.required_artifacts()
    return {"artifact": settings.artifact} if hasattr(settings, "artifact") else {}
