"""Reading an environment back into an evidence packet: each host's part while the deploy runs there,
then the controller's part (source, profile, artifacts against their pins, DNS, backups) once every
host has been read."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from dataclasses import dataclass, field

from pyinfra import host
from pyinfra.api.exceptions import DeployError

from gpuaas import artifacts
from gpuaas.backup import sets, store
from gpuaas.discovery import all_roles
from gpuaas.evidence import rollback
from gpuaas.evidence.facts import HostIdentity, LinkedPrograms
from gpuaas.evidence.packet import (
    ArtifactReadback,
    HostReadback,
    Inputs,
    InstalledProgram,
    Item,
    Layer,
    Packet,
    ProfileReadback,
    Source,
    Status,
    worst,
)
from gpuaas.managed import PinnedProgram
from gpuaas.operations import program_target
from gpuaas.profile import REPO_ROOT, Host, Profile
from gpuaas.render import rendered_files
from gpuaas.role import Role, required_artifacts
from gpuaas.source import source_sha

#: What the operator passes in for the packet: the UAT package's link and the portal's build id.
UAT_PACKAGE_ENV = "GPUAAS_UAT_PACKAGE"
PORTAL_BUILD_ENV = "GPUAAS_PORTAL_BUILD"


@dataclass
class HostFindings:
    """What was read on one host."""

    node: Host
    identity: dict
    items: list[Item] = field(default_factory=list)
    #: Artifact name -> (link, what LinkedPrograms read for it).
    programs: dict[str, list[tuple[str, dict]]] = field(default_factory=dict)


def deployed_roles(profile: Profile, node: Host | None = None) -> list[Role]:
    """The roles with a readback the profile deploys (on `node`, when given)."""
    return [
        role
        for role in all_roles()
        if role.readback and role.not_deployed_because(profile) is None and (node is None or role.applies(node))
    ]


def read_host(profile: Profile, node: Host) -> HostFindings:
    """Read the current host: its identity, each deployed role's readback, the pinned programs' files."""
    findings = HostFindings(node, host.get_fact(HostIdentity))
    links: dict[str, str] = {}
    for role in deployed_roles(profile, node):
        item = _role_item(role, profile, node)
        if item is not None:
            findings.items.append(item)
        try:
            wanted = role.items(profile, node)
        except DeployError:
            # Its readback says the rest; an artifact that cannot be had shows on the artifact's line.
            continue
        links.update({item.link: item.artifact for item in wanted if isinstance(item, PinnedProgram)})
    read = host.get_fact(LinkedPrograms, links=tuple(sorted(links))) if links else {}
    for link, artifact in sorted(links.items()):
        findings.programs.setdefault(artifact, []).append((link, read.get(link, {"target": None, "sha256": None})))
    return findings


def _role_item(role: Role, profile: Profile, node: Host) -> Item | None:
    """The role's readback on this host as a packet item; None when it reads nothing here."""
    try:
        found = role.read_back(profile, node)
    except DeployError as error:
        found = {"status": "blocked", "message": f"not read: {error}"}
    if found is None:
        return None
    status = found.get("status")
    if status not in {s.value for s in Status}:
        status, message = "blocked", "its readback gave no status"
    else:
        message = str(found.get("message", ""))
    observed = {key: value for key, value in found.items() if key not in ("status", "message")}
    layer = Layer(role.layer) if role.layer else Layer.RUNTIME
    return Item(
        layer=layer,
        name=role.title,
        host=node.name,
        status=status,
        message=message,
        observed=observed,
        pinned="pinned" in observed,
    )


# --- the controller's part ---------------------------------------------------------------------------


def profile_digest(profile: Profile) -> str:
    """sha256 over the rendered form: each file's path and content digest, in path order."""
    digest = hashlib.sha256()
    for path, content in sorted(rendered_files(profile).items()):
        digest.update(f"{path}\0{hashlib.sha256(content.encode()).hexdigest()}\n".encode())
    return digest.hexdigest()


def source() -> Source:
    sha = source_sha()
    return Source(sha=sha.removesuffix("-dirty"), dirty=sha.endswith("-dirty"))


def used_artifacts(profile: Profile) -> dict[str, list[str]]:
    """Artifact -> the titles of the deployed roles that name it in their settings."""
    used: dict[str, list[str]] = {}
    for role in all_roles():
        if role.settings is None or role.not_deployed_because(profile) is not None:
            continue
        nodes = [n for n in profile.hosts if role.applies(n)] or [None]
        for node in nodes:
            settings = role.settings_of(profile, node)
            if settings is None:
                continue
            for name in required_artifacts(settings).values():
                if role.title not in used.setdefault(name, []):
                    used[name].append(role.title)
    return used


def artifact_readbacks(profile: Profile, hosts: list[HostFindings]) -> list[ArtifactReadback]:
    used = used_artifacts(profile)
    readbacks = []
    for name, pin in sorted(profile.artifacts.items()):
        installed = _installed(name, pin, hosts)
        try:
            program_sha256 = artifacts.program_digest(name, pin) if installed else None
            verified = True
        except DeployError as error:
            program_sha256, verified, reason = None, False, str(error)
        if installed:
            installed = [_judged(program, pin.version, program_sha256) for program in installed]
        if not verified:
            status, message = Status.BLOCKED, f"not verified on the controller: {reason}"
        elif installed:
            status = worst(p.status for p in installed)
            message = _installed_message(installed, pin.version)
        elif name in used:
            # An archive or a release's files: the role's own readback reads back what it installed.
            roles = ", ".join(used[name])
            status, message = Status.OK, f"pinned for {roles}; not a program on the hosts ({roles} reads it back)"
        else:
            status, message = Status.BLOCKED, "pinned, but no deployed role uses it"
        readbacks.append(
            ArtifactReadback(
                name=name,
                version=pin.version,
                sha256=pin.sha256,
                source=pin.wheel or str(pin.url),
                program_sha256=program_sha256,
                installed=installed,
                status=status,
                message=message,
            )
        )
    return readbacks


def _installed(name: str, pin, hosts: list[HostFindings]) -> list[InstalledProgram]:
    found = []
    for findings in hosts:
        for link, read in findings.programs.get(name, []):
            target = read["target"]
            # /opt/gpuaas/ARTIFACT/VERSION/PROGRAM (gpuaas.operations.program_target)
            parts = target.split("/") if target else []
            version = parts[-2] if target and target.startswith(program_target(name, "", "").rstrip("/")) else None
            found.append(
                InstalledProgram(
                    host=findings.node.name, path=target or link, version=version, sha256=read["sha256"], status="ok"
                )
            )
    return found


def _judged(program: InstalledProgram, version: str, program_sha256: str | None) -> InstalledProgram:
    if program.sha256 is None:
        status = Status.FAILED
    elif program.version != version or program.sha256 != program_sha256:
        status = Status.DRIFT
    else:
        status = Status.OK
    return program.model_copy(update={"status": status})


def _installed_message(installed: list[InstalledProgram], version: str) -> str:
    parts = []
    for program in installed:
        if program.status is Status.OK:
            parts.append(f"{program.host}: {version}, sha256 matches")
        elif program.status is Status.FAILED:
            parts.append(f"{program.host}: no program at {program.path}")
        else:
            parts.append(
                f"{program.host}: {program.version or 'unknown version'} sha256 {(program.sha256 or '?')[:12]}… "
                f"differs from the pin {version}"
            )
    return "; ".join(parts)


def artifact_items(readbacks: list[ArtifactReadback]) -> list[Item]:
    """The artifacts as runtime items, so the per-layer view shows them beside the hosts."""
    return [
        Item(
            layer=Layer.RUNTIME,
            name=f"artifact {a.name} {a.version}",
            host=None,
            status=a.status,
            message=a.message,
            observed={"sha256": a.sha256, "program_sha256": a.program_sha256},
            pinned=True,
        )
        for a in readbacks
    ]


def host_items(hosts: list[HostFindings], profile: Profile) -> list[Item]:
    items = []
    read = {f.node.name for f in hosts}
    for findings in hosts:
        identity = findings.identity
        ok = identity.get("os") and identity.get("kernel")
        items.append(
            Item(
                layer=Layer.RUNTIME,
                name="host",
                host=findings.node.name,
                status=Status.OK if ok else Status.FAILED,
                message=f"{identity.get('os')}, kernel {identity.get('kernel')}, {findings.node.address}"
                if ok
                else "the OS could not be read",
                observed=identity,
            )
        )
    for node in profile.hosts:
        if node.name not in read:
            items.append(
                Item(
                    layer=Layer.RUNTIME,
                    name="host",
                    host=node.name,
                    status=Status.FAILED,
                    message="not reached by this run",
                )
            )
    return items


def not_deployed_items(profile: Profile) -> list[Item]:
    """A blocked item for each role with a readback that the profile leaves off, with the reason."""
    items = []
    for role in all_roles():
        reason = role.not_deployed_because(profile)
        if role.readback and reason is not None:
            layer = Layer(role.layer) if role.layer else Layer.RUNTIME
            items.append(Item(layer=layer, name=role.title, host=None, status=Status.BLOCKED, message=reason))
    return items


def controller_items(profile: Profile) -> list[Item]:
    """What the controller roles read back themselves (the edge from Cloudflare)."""
    return [
        Item(layer=Layer(role.layer) if role.layer else Layer.RUNTIME, host=None, **item)
        for role in all_roles()
        if role.evidence
        for item in role.evidence_items(profile)
    ]


def backup_items(profile: Profile, now: datetime.datetime) -> list[Item]:
    """The newest complete backup set, and the last restore drill's result on record."""
    try:
        # A readback reports an unreachable store; it does not wait out a backup's retries.
        s3 = store.client(profile, attempts=1)
        with store.reaching(profile, "listing the backup sets"):
            complete = sets.complete_sets(s3, profile.backup.bucket, profile.name)
    except DeployError as error:
        newest = Item(
            layer=Layer.BACKUPS,
            name="newest backup set",
            host=None,
            status=Status.BLOCKED,
            message=f"not read: {error}",
        )
    else:
        if complete:
            set_id = complete[-1]
            age = now - sets.set_time(set_id)
            newest = Item(
                layer=Layer.BACKUPS,
                name="newest backup set",
                host=None,
                status=Status.OK,
                message=f"{set_id}, {_age(age)} old, of {len(complete)} complete",
                observed={"set": set_id, "complete_sets": len(complete)},
            )
        else:
            newest = Item(
                layer=Layer.BACKUPS,
                name="newest backup set",
                host=None,
                status=Status.BLOCKED,
                message=f"no complete backup set in {profile.backup.bucket} yet (deploys/backup.py makes one)",
            )
    return [newest, _drill_item(profile)]


def _drill_item(profile: Profile) -> Item:
    path = REPO_ROOT / "build" / profile.name / "evidence" / "restore-drill.json"
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return Item(
            layer=Layer.BACKUPS,
            name="last restore drill",
            host=None,
            status=Status.BLOCKED,
            message="no restore drill on record (deploys/restore_drill.py writes one)",
        )
    passed = bool(report.get("passed"))
    return Item(
        layer=Layer.BACKUPS,
        name="last restore drill",
        host=None,
        status=Status.OK if passed else Status.FAILED,
        message=f"{'passed' if passed else 'FAILED'}: set {report.get('set')}, ended {report.get('ended')}",
        observed={"set": report.get("set"), "passed": passed, "ended": report.get("ended")},
    )


def _age(delta: datetime.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def inputs() -> Inputs:
    return Inputs(
        uat_package=os.environ.get(UAT_PACKAGE_ENV) or None, portal_build=os.environ.get(PORTAL_BUILD_ENV) or None
    )


def blocked_lines(profile: Profile, items: list[Item], given: Inputs) -> list[str]:
    lines = [
        f"{item.name}{f' on {item.host}' if item.host else ''}: {item.message}"
        for item in items
        if item.status is Status.BLOCKED
    ]
    if given.uat_package is None:
        lines.append(f"UAT package: no link passed in ({UAT_PACKAGE_ENV})")
    if given.portal_build is None:
        lines.append(f"portal build: no build id passed in ({PORTAL_BUILD_ENV})")
    if profile.evidence.signing_key is None:
        lines.append(f"signature: evidence.signing_key is not set in {profile.source}; the packet is unsigned")
    return lines


def packet(profile: Profile, hosts: list[HostFindings], now: datetime.datetime | None = None) -> Packet:
    """The packet of `profile` from what was read on `hosts`, with the controller's part read now."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    readbacks = artifact_readbacks(profile, hosts)
    items = [
        *controller_items(profile),
        *[item for findings in hosts for item in findings.items],
        *host_items(hosts, profile),
        *artifact_items(readbacks),
        *backup_items(profile, now),
        *not_deployed_items(profile),
    ]
    order = list(Layer)
    items.sort(key=lambda item: order.index(item.layer))
    given = inputs()
    read_at, read_from = now.strftime("%Y-%m-%dT%H:%M:%SZ"), source()
    return Packet(
        schema="gpuaas.evidence/v1",
        environment=profile.name,
        read_at=read_at,
        status=worst(item.status for item in items),
        source=read_from,
        profile=ProfileReadback(name=profile.name, source=profile.source, digest=profile_digest(profile)),
        inputs=given,
        hosts=[
            HostReadback(
                name=f.node.name,
                address=str(f.node.address),
                groups=list(f.node.groups),
                os=f.identity.get("os"),
                kernel=f.identity.get("kernel"),
            )
            for f in hosts
        ],
        artifacts=readbacks,
        items=items,
        blocked=blocked_lines(profile, items, given),
        rollback=rollback.point(profile, read_at, read_from, readbacks),
    )
