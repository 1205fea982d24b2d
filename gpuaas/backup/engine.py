"""Backing up an environment's stateful services into one backup set, restoring a set, expiring old
sets. The deploys in deploys/ call these from the controller; each service's own part lives in its
role's `backup.py` (see gpuaas.backup.service).

Each run holds the environment's lease in the bucket (gpuaas.backup.lease) while it writes, reads or
removes anything, and clears restore markers left by killed runs when it starts. A restore or drill
reads only a set whose manifest verifies with the environment's manifest key (gpuaas.backup.sets),
or, for another environment's set (GPUAAS_RESTORE_FROM), with that environment's key as the profile
names it under `backup.trusted_manifest_keys`: keys are never shared between environments, so a
holder of a lower environment's key cannot make a set another environment accepts."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import IO

from pyinfra.api.exceptions import DeployError

from gpuaas.backup import crypt, store
from gpuaas.backup.lease import Lease, clear_stale_markers, live_lease
from gpuaas.backup.service import BackupJob, RestoreJob, RestoreRefused, ServiceBackup, differences
from gpuaas.backup.sets import BASELINE, Hashing, Manifest, complete_sets, expired, list_sets, prefix, set_label
from gpuaas.backup.transport import HostShell
from gpuaas.backup.writer import (
    BackupSetError,
    ManifestKey,
    SetWriter,
    mark_in_use,
    read_manifest,
    remove_sets,
    utc_now,
    verify,
)
from gpuaas.discovery import backed_up
from gpuaas.groups import DATA, RKE2_SERVERS
from gpuaas.profile import HOSTNAME, Host, Profile
from gpuaas.safetext import SAFE_FILE_NAME
from gpuaas.secrets import resolve
from gpuaas.source import source_sha


def service_parts() -> tuple[ServiceBackup, ...]:
    """Each role's part of a backup set, in restore order: the databases others keep their state in first."""
    return tuple(role.part(role.backup) for role in backed_up())


Log = Callable[[str], None]


class ObjectChanged(BackupSetError, RestoreRefused):
    """An object read back for a restore differs from the manifest's sha256 (changed in the bucket)."""


def _service(name: str) -> ServiceBackup:
    return next(module for module in service_parts() if module.SERVICE == name)


def manifest_key(profile: Profile, environment: str | None = None) -> ManifestKey:
    """The key that signs ENVIRONMENT's manifests as this profile knows it: its own `backup.manifest_key`,
    or another environment's under `backup.trusted_manifest_keys` (refused when the profile names none)."""
    environment = environment or profile.name
    if environment == profile.name:
        return ManifestKey(resolve(profile, profile.backup.manifest_key), "backup.manifest_key")
    reference = profile.backup.trusted_manifest_keys.get(environment)
    if reference is None:
        raise DeployError(
            f"{profile.source}: backup.trusted_manifest_keys.{environment}: not set; a set of "
            f"{environment} is restored only when its manifest verifies with {environment}'s manifest "
            "key, which this field names (a secret reference); nothing was changed"
        )
    return ManifestKey(resolve(profile, reference), f"backup.trusted_manifest_keys.{environment}", f"{environment}'s")


@contextmanager
def exclusive(s3, profile: Profile, operation: str, log: Log) -> Iterator[Lease]:
    """The environment's lease held for the block (waiting up to `backup.lease_wait` for another run),
    with the restore markers that killed runs left behind cleared and reported first."""
    lease = Lease(
        s3, profile.backup.bucket, profile.name, operation, profile.backup.lease_ttl, profile.backup.lease_wait, log
    )
    with store.reaching(profile, "taking the backup lease"):
        lease.acquire()
    try:
        with store.reaching(profile, "clearing stale restore markers"):
            clear_stale_markers(s3, profile.backup.bucket, profile.name, log)
        yield lease
    finally:
        lease.release()


def _upload(writer: SetWriter, profile: Profile, key_prefix: str, name: str, stream: IO[bytes]):
    encryption = profile.backup.encryption
    if encryption is None:
        return writer.upload(key_prefix + name, stream)
    with crypt.encrypting(stream, encryption.recipients, key_prefix + name) as sealed:
        return writer.upload(key_prefix + name, sealed)


def back_up(
    profile: Profile, log: Log = print, services: tuple[ServiceBackup, ...] | None = None, label: str = ""
) -> Manifest:
    """One backup set of every service the profile runs on its data hosts; the manifest, written last.
    Any failure leaves the set without a manifest (never offered for a restore) and raises. A `label`
    is carried in the set's id (gpuaas.backup.sets.BASELINE: kept by retention)."""
    s3 = store.client(profile)
    with exclusive(s3, profile, "backup", log) as lease:
        return _back_up(s3, profile, lease, log, services if services is not None else service_parts(), label)


def _back_up(
    s3, profile: Profile, lease: Lease, log: Log, services: tuple[ServiceBackup, ...], label: str = ""
) -> Manifest:
    writer = SetWriter(
        s3,
        profile.backup.bucket,
        profile.name,
        source_sha(),
        manifest_key(profile),
        store.transfer_config(profile),
        label=label,
    )
    writer.manifest.encryption = "age" if profile.backup.encryption else ""
    lease.note(writer.manifest.set_id)
    log(f"backup set {writer.prefix} started")
    try:
        for node in profile.group(DATA):
            shell = HostShell(profile, node)
            for module in services:
                if not module.applies(profile):
                    continue
                lease.check()
                key_prefix = f"{node.name}/{module.SERVICE}/"
                job = BackupJob(profile, node, shell, upload=partial(_upload, writer, profile, key_prefix))
                module.back_up(job)
                writer.record(f"{node.name}/{module.SERVICE}", job.version, job.figures)
                stored = [
                    entry for entry in writer.manifest.objects if entry.key.startswith(writer.prefix + key_prefix)
                ]
                log(
                    f"{node.name} {module.SERVICE} {job.version}: {len(stored)} objects, "
                    f"{sum(entry.size for entry in stored)} bytes"
                )
        writer.manifest.etcd_snapshots = etcd_snapshots(s3, profile)
        lease.check()
        manifest = writer.finish()
    except BackupSetError:
        raise
    except Exception as error:
        raise BackupSetError(
            f"{profile.name}: backup set {writer.manifest.set_id} is incomplete and will never be "
            f"offered for a restore (no manifest was written): {error}"
        ) from None
    log(f"backup set {writer.prefix} complete: {len(manifest.objects)} objects")
    return manifest


def etcd_snapshots(s3, profile: Profile, newest: int = 3) -> list[dict]:
    """The newest etcd snapshots RKE2 itself sent to the bucket (`roles.rke2.etcd_s3`), so that a set
    names the cluster state of its time; empty when the cluster does not send them."""
    servers = profile.group(RKE2_SERVERS)
    rke2 = profile.role_settings("rke2", servers[0]) if servers else None
    if rke2 is None or not rke2.etcd_s3:
        return []
    folder = rke2.etcd_s3_folder.strip("/") + "/"
    found = [
        {"key": item["Key"], "size": item["Size"], "modified": item["LastModified"].isoformat()}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=profile.backup.bucket, Prefix=folder)
        for item in page.get("Contents", [])
    ]
    return sorted(found, key=lambda item: item["modified"], reverse=True)[:newest]


def expire(profile: Profile, log: Log = print, now: datetime.datetime | None = None) -> list[str]:
    """Remove the sets retention no longer keeps, holding the environment's lease: no other run of the
    environment is live, so every incomplete set is one whose run died and goes too. The ids removed."""
    s3 = store.client(profile)
    with exclusive(s3, profile, "retention", log) as lease, store.reaching(profile, "removing expired sets"):
        sets = list_sets(s3, profile.backup.bucket, profile.name)
        moment = now or datetime.datetime.now(datetime.timezone.utc)
        doomed = expired(sets, profile.backup.keep_last, profile.backup.keep_days, moment)
        lease.check()
        if doomed:
            remove_sets(s3, profile.backup.bucket, {set_id: sets[set_id]["keys"] for set_id in doomed})
            log(f"retention removed {len(doomed)} set(s): {', '.join(doomed)}")
        return doomed


def replace_baselines(profile: Profile, newest: str, log: Log = print) -> list[str]:
    """The baseline sets other than `newest` removed (a demo capture replaces the baseline; retention never
    removes one), holding the environment's lease; never a set a restore is reading. The ids removed."""
    s3 = store.client(profile)
    with exclusive(s3, profile, "retention", log) as lease, store.reaching(profile, "removing older baselines"):
        sets = list_sets(s3, profile.backup.bucket, profile.name)
        older = sorted(s for s, e in sets.items() if set_label(s) == BASELINE and s != newest and not e["in_use"])
        lease.check()
        if older:
            remove_sets(s3, profile.backup.bucket, {set_id: sets[set_id]["keys"] for set_id in older})
            log(f"the earlier baseline set(s) removed: {', '.join(older)}")
        return older


def expiring(profile: Profile, now: datetime.datetime | None = None) -> list[str]:
    """The sets retention would remove now, read without the lease (for a plan): while another run is
    live, no incomplete set and not the set that run names."""
    s3 = store.client(profile)
    sets = list_sets(s3, profile.backup.bucket, profile.name)
    running = live_lease(s3, profile.backup.bucket, profile.name)
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    busy = {running.set_id} if running is not None else set()
    return expired(
        sets,
        profile.backup.keep_last,
        profile.backup.keep_days,
        moment,
        another_run_live=running is not None,
        busy=busy,
    )


@dataclass
class RestorePlan:
    """What a restore will do: the set, and for each service the host it lands on and its objects."""

    manifest: Manifest
    #: (set's node name, service) -> (target host, object names)
    steps: dict[tuple[str, str], tuple[Host, list[str]]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        sizes = {entry.key: entry.size for entry in self.manifest.objects}
        base = prefix(self.manifest.environment, self.manifest.set_id)
        lines = [
            f"set {self.manifest.environment}/{self.manifest.set_id} (from {self.manifest.source_sha}, "
            f"{self.manifest.started} to {self.manifest.ended})"
        ]
        for (source, service), (target, names) in self.steps.items():
            total = sum(sizes[f"{base}{source}/{service}/{name}"] for name in names)
            version = self.manifest.services[f"{source}/{service}"]["version"]
            lines.append(f"{service} {version} from {source} onto {target.name}: {', '.join(names)} ({total} bytes)")
        if self.manifest.etcd_snapshots:
            newest = self.manifest.etcd_snapshots[0]
            lines.append(
                f"etcd (not restored here): the newest RKE2 snapshot of that time is {newest['key']} "
                f"({newest['modified']}); RKE2 restores it with `rke2 server --cluster-reset --etcd-s3 "
                "--cluster-reset-restore-path=NAME`"
            )
        return lines


def choose_set(profile: Profile, set_id: str, source_environment: str | None = None) -> Manifest:
    """The manifest of SET_ID (or of the newest complete set for `latest`) of `source_environment`
    (default: the profile's own environment), once it verifies with that environment's manifest key."""
    s3 = store.client(profile)
    environment = source_environment or profile.name
    key = manifest_key(profile, environment)
    if set_id == "latest":
        complete = complete_sets(s3, profile.backup.bucket, environment)
        if not complete:
            raise BackupSetError(f"{environment} has no complete backup set in {profile.backup.bucket}")
        set_id = complete[-1]
    return read_manifest(s3, profile.backup.bucket, environment, set_id, key)


def plan_restore(
    profile: Profile, manifest: Manifest, allow_other_environment: bool = False, only: tuple[str, ...] = ()
) -> RestorePlan:
    """Map the set's services onto the profile's data hosts (same name, or the same position in the
    data group when the set comes from another environment), refusing a foreign set unless allowed."""
    if manifest.environment != profile.name and not allow_other_environment:
        raise DeployError(
            f"backup set {manifest.set_id} belongs to {manifest.environment}, not {profile.name}; "
            "restoring another environment's data is refused unless explicitly allowed "
            "(GPUAAS_RESTORE_FROM)"
        )
    if manifest.encryption and profile.backup.encryption is None:
        raise DeployError(
            f"backup set {manifest.set_id} is encrypted ({manifest.encryption}) and "
            f"{profile.name}'s backup.encryption names no identity to decrypt it"
        )
    _refuse_unknown_names(profile, manifest, only)
    targets = profile.group(DATA)
    sources = list(dict.fromkeys(name.split("/")[0] for name in manifest.services))
    by_name = {node.name: node for node in targets}
    if not all(source in by_name for source in sources) and len(sources) > len(targets):
        raise DeployError(
            f"backup set {manifest.set_id} holds {len(sources)} data hosts, {profile.name} has {len(targets)}"
        )
    mapping = {source: by_name.get(source) or targets[index] for index, source in enumerate(sources)}
    plan = RestorePlan(manifest)
    base = prefix(manifest.environment, manifest.set_id)
    for module in service_parts():
        for source in sources:
            key = f"{source}/{module.SERVICE}"
            if key not in manifest.services or (only and module.SERVICE not in only):
                continue
            names = [
                entry.key.removeprefix(f"{base}{key}/")
                for entry in manifest.objects
                if entry.key.startswith(f"{base}{key}/")
            ]
            plan.steps[(source, module.SERVICE)] = (mapping[source], names)
    return plan


def _refuse_unknown_names(profile: Profile, manifest: Manifest, only: tuple[str, ...] = ()) -> None:
    """DeployError unless every host, service and object the restore would take from the manifest is
    one the profile has: a data host of the profile (for its own sets; another environment's sets land
    by position), a service the profile backs up, a plain file name under its service's folder. The
    roles check the database and stream names inside."""
    own = manifest.environment == profile.name
    data_hosts = [node.name for node in profile.group(DATA)]
    services = [module.SERVICE for module in service_parts() if module.applies(profile)]
    selected = [name for name in manifest.services if not only or name.partition("/")[2] in only]
    problems = []
    for name in selected:
        node, _, service = name.partition("/")
        if own and node not in data_hosts:
            problems.append(f"host '{node}' is not a data host of {profile.name} ({', '.join(data_hosts)})")
        elif not HOSTNAME.match(node):
            problems.append(f"host '{node}' is not a host name")
        if service not in services:
            problems.append(f"service '{service}' is not one {profile.name} backs up ({', '.join(services)})")
    base = prefix(manifest.environment, manifest.set_id)
    for entry in manifest.objects:
        folder, _, name = entry.key.removeprefix(base).rpartition("/")
        if not entry.key.startswith(base) or folder not in manifest.services or not SAFE_FILE_NAME.fullmatch(name):
            problems.append(f"object '{entry.key}' is not a file of a service of this set")
    if problems:
        raise DeployError(
            f"backup set {manifest.environment}/{manifest.set_id}: its manifest names what "
            f"{profile.source} does not have: {'; '.join(problems)}; nothing was changed"
        )


@contextmanager
def _opened(s3, profile: Profile, manifest: Manifest, key: str, sha256: str) -> Iterator[IO[bytes]]:
    """One object streamed back (decrypted when the set is), checked again against its sha256 as it
    is read: what a service receives is exactly what was verified."""
    body = Hashing(s3.get_object(Bucket=profile.backup.bucket, Key=key)["Body"])
    with ExitStack() as stack:
        stream = body
        if manifest.encryption:
            identity = resolve(profile, profile.backup.encryption.identity)
            stream = stack.enter_context(crypt.decrypting(body, identity, key))
        yield stream
    if body.digest.hexdigest() != sha256:
        raise ObjectChanged(
            f"{key} changed in the bucket while it was being restored (what was received has "
            f"sha256 {body.digest.hexdigest()}, the manifest says {sha256})"
        )


def _stop_dependants(shell: HostShell, units: set[str]) -> list[str]:
    if not units:
        return []
    command = (
        f"for unit in {' '.join(sorted(units))}; do systemctl is-active -q $unit.service && "
        "systemctl stop $unit.service && echo $unit; done; true"
    )
    return shell.run(command, "stopping the services that depend on the restored data").split()


def _start(shell: HostShell, units: list[str]) -> None:
    if units:
        shell.run(f"systemctl start {' '.join(unit + '.service' for unit in units)}", "starting the stopped services")


def _jobs(s3, profile: Profile, plan: RestorePlan) -> Iterator[tuple[str, ServiceBackup, RestoreJob]]:
    """(set key, service module, restore job) for each planned step, objects opened from the set."""
    manifest = plan.manifest
    entries = {entry.key: entry for entry in manifest.objects}
    base = prefix(manifest.environment, manifest.set_id)
    for (source, service), (target, names) in plan.steps.items():
        key = f"{source}/{service}"

        def open_object(name: str, key: str = key):
            entry = entries[f"{base}{key}/{name}"]
            return _opened(s3, profile, manifest, entry.key, entry.sha256)

        job = RestoreJob(
            profile,
            target,
            HostShell(profile, target),
            names=names,
            open=open_object,
            figures=manifest.services[key]["figures"],
        )
        yield key, _service(service), job


@contextmanager
def _verified(s3, profile: Profile, manifest: Manifest, operation: str, log: Log) -> Iterator[Lease]:
    """The environment's lease held, the set marked as being read by this run (retention leaves it
    alone while the lease lives) and every object checked against the manifest, before the block runs;
    the mark and the lease are removed afterwards."""
    with exclusive(s3, profile, operation, log) as lease:
        lease.note(manifest.set_id)
        with store.reaching(profile, f"marking backup set {manifest.set_id} as being read"):
            mark_in_use(s3, profile.backup.bucket, manifest, lease.marker())
        try:
            verify(s3, profile.backup.bucket, manifest)
            log(f"set {manifest.set_id}: every object matches its sha256")
            yield lease
        finally:
            with store.reaching(profile, f"removing the mark of backup set {manifest.set_id}"):
                mark_in_use(s3, profile.backup.bucket, manifest, None)


def _verdict(lines: list[str]) -> str:
    return "figures match the manifest" if not lines else "; ".join(lines)


def restore(profile: Profile, plan: RestorePlan, log: Log = print) -> dict[str, list[str]]:
    """Verify every object of the set, then restore each planned service and compare its figures
    with the manifest's. Returns service -> differences (empty lists when all match); raises before
    any service is touched when an object is missing or altered. When a service refuses what it staged
    (RestoreRefused: its live data kept), the services after it are left alone, the dependants are
    started again and RestoreRefused names each."""
    s3 = store.client(profile)
    with _verified(s3, profile, plan.manifest, "restore", log) as lease:
        results: dict[str, list[str]] = {}
        refused: list[str] = []
        hosts = {target.name: target for target, _ in plan.steps.values()}
        stopped = {
            name: _stop_dependants(
                HostShell(profile, node),
                {
                    unit
                    for (_, service), (target, _) in plan.steps.items()
                    if target.name == name
                    for unit in _service(service).DEPENDANTS
                },
            )
            for name, node in hosts.items()
        }
        try:
            for key, module, job in _jobs(s3, profile, plan):
                if refused:
                    refused.append(
                        f"{module.SERVICE} on {job.node.name} was not restored (stopped after the refusal above)"
                    )
                    continue
                lease.check()
                try:
                    found = module.restore(job)
                except RestoreRefused as error:
                    refused.append(
                        f"restore of {module.SERVICE} on {job.node.name} refused before the swap: "
                        f"{error}; the live data was kept"
                    )
                    log(refused[-1])
                    continue
                results[key] = differences(job.figures, found if found is not None else module.figures(job))
                log(f"{module.SERVICE} restored onto {job.node.name}: {_verdict(results[key])}")
        finally:
            for name, units in stopped.items():
                _start(HostShell(profile, hosts[name]), units)
        if refused:
            raise RestoreRefused(
                f"restore of backup set {plan.manifest.environment}/{plan.manifest.set_id} failed: {'; '.join(refused)}"
            )
        return results


def drill(profile: Profile, plan: RestorePlan, log: Log = print) -> dict:
    """Restore the set beside the live services (scratch databases and scratch servers on the data
    hosts, removed afterwards) and compare what comes back with the manifest. The report: per
    service, the figures expected and found and the differences; `passed` when none differ."""
    s3 = store.client(profile)
    manifest = plan.manifest
    report = {
        "environment": profile.name,
        "set": f"{manifest.environment}/{manifest.set_id}",
        "source_sha": manifest.source_sha,
        "started": utc_now(),
        "services": {},
    }
    with _verified(s3, profile, manifest, "drill", log) as lease:
        for key, module, job in _jobs(s3, profile, plan):
            lease.check()
            try:
                found = module.drill(job)
            except RestoreRefused as error:
                found, lines = {}, [f"the restored copy was refused: {error}"]
            else:
                lines = differences(job.figures, found)
            report["services"][key] = {"expected": job.figures, "found": found, "differences": lines}
            log(f"drill {key}: {_verdict(lines)}")
    report["ended"] = utc_now()
    report["passed"] = all(not entry["differences"] for entry in report["services"].values())
    return report
