"""Loading, capturing and resetting the demo's baseline on every data host, run from the controller.

    load      the repository's baseline written into the services (schema and seed, keys, streams, paths)
    capture   the services' state as it is now kept as the baseline: Postgres template databases and the
              snapshots on the data host (gpuaas.backup's parts where they fit), their content checksums,
              and a backup set labelled `baseline` in the bucket (never removed by retention)
    reset     the writers stopped, every service returned to the captured baseline and checked (checksums
              per table, key, stream and path equal the capture's, no workflow running), the writers
              started, then every persona shown to sign in where Keycloak is deployed

Each refuses an environment other than demo and local, and runs only with its confirmation."""

from __future__ import annotations

import datetime
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pyinfra.api.exceptions import DeployError

from gpuaas.backup import engine as backup_engine
from gpuaas.backup import store
from gpuaas.backup.service import RestoreRefused, ServiceHost, differences
from gpuaas.backup.sets import BASELINE
from gpuaas.backup.transport import HostShell
from gpuaas.discovery import roles_in
from gpuaas.groups import DATA
from gpuaas.profile import Profile
from gpuaas.role import Phase
from gpuaas.secrets import Secret, resolve
from gpuaas.source import source_sha
from roles.demo import keycloak as keycloak_part
from roles.demo import nats as nats_part
from roles.demo import openbao as openbao_part
from roles.demo import postgres as postgres_part
from roles.demo import redis as redis_part
from roles.demo import temporal as temporal_part
from roles.demo.baseline import LoadedBaseline, load_baseline, settings_for
from roles.demo.settings import RESETTABLE
from roles.demo.snapshots import HostSnapshots
from roles.nats.backup import Client as NatsClient

MODE_ENV, CONFIRM_ENV = "GPUAAS_RESET", "GPUAAS_CONFIRM"
MODES = ("reset", "capture", "load")
REDIS_KEYS, VAULT_PATHS = "redis/keys.json", "openbao/paths.json"
#: The kind of checksums a capture records: a reset compares only checksums of its own kind.
CHECKSUMS_VERSION = 2

Log = Callable[[str], None]


class ResetRefused(DeployError):
    """The environment, the confirmation or the mode says no; nothing was changed."""


def mode() -> str:
    chosen = os.environ.get(MODE_ENV, "reset") or "reset"
    if chosen not in MODES:
        raise ResetRefused(f"{MODE_ENV}: {chosen[:20]!r} is not one of {', '.join(MODES)}; nothing was changed")
    return chosen


def confirmation(profile: Profile, chosen: str) -> str:
    """What GPUAAS_CONFIRM must say: `capture ENV` for a capture, `reset ENV` for a reset or a load."""
    return f"{'capture' if chosen == 'capture' else 'reset'} {profile.name}"


def environment_refusal(profile: Profile, chosen: str) -> str | None:
    """Why the environment may not be touched by this deploy at all, whatever is set; None when it may."""
    if profile.name not in RESETTABLE:
        return (
            f"{profile.source}: {profile.name} is not a demo environment: the reset deploy runs only against "
            f"{' and '.join(RESETTABLE)}, and no setting or flag changes that; nothing was changed"
        )
    if settings_for(profile).baseline is None:
        return (
            f"{profile.source}: roles.demo.baseline: not set, so there is no baseline to {chosen}; nothing was changed"
        )
    return None


def confirmation_refusal(profile: Profile, chosen: str, confirmed: str | None) -> str | None:
    """Why this run may not change anything without the operator's word; None when it was given."""
    wanted = confirmation(profile, chosen)
    if confirmed != wanted:
        return f"{chosen} is destructive and refused without {CONFIRM_ENV}='{wanted}'; nothing was changed"
    return None


def refusal(profile: Profile, chosen: str, confirmed: str | None) -> str | None:
    """The first reason this run may not go on (the environment before the confirmation)."""
    return environment_refusal(profile, chosen) or confirmation_refusal(profile, chosen, confirmed)


@dataclass
class Target(ServiceHost):
    """One data host with what the baseline keeps there."""

    snapshots: HostSnapshots = None


@contextmanager
def targets(profile: Profile) -> Iterator[list[Target]]:
    """The data hosts, each reached over one shared SSH connection for the block."""
    directory = settings_for(profile).snapshot_dir
    found = []
    try:
        for node in profile.group(DATA):
            target = Target(profile, node, HostShell(profile, node, shared=True))
            target.snapshots = HostSnapshots(target, directory)
            found.append(target)
        yield found
    finally:
        for target in found:
            target.shell.close()


def _enabled(profile: Profile, service: str) -> bool:
    return getattr(getattr(profile.services, service), "enabled", True)


def checksums(target: Target, baseline: LoadedBaseline, postgres: dict | None = None) -> dict:
    """{service: {name: checksum}} of everything the baseline covers, read from the live services (for
    Postgres, `postgres` when given: the checksums of the copies a reset proved and renamed into place)."""
    found: dict[str, dict] = {
        "postgres": postgres
        if postgres is not None
        else {
            database.database: postgres_part.checksums(target, database.database)
            for database in baseline.model.postgres
        },
        "redis": redis_part.checksums(redis_part.read_keys(target)),
    }
    if _enabled(target.profile, "nats"):
        client = NatsClient(target)
        try:
            found["nats"] = nats_part.checksums(client)
        finally:
            client.close()
    if _enabled(target.profile, "openbao"):
        found["openbao"] = openbao_part.checksums(openbao_part.read_paths(target, baseline.model.openbao.mount))
    return found


def _stop_writers(target: Target, log: Log) -> list[str]:
    """The profile's writer units stopped; the ones to start again afterwards: those running or enabled
    (a reset cut short left them stopped, and the run that completes it starts them)."""
    units = settings_for(target.profile).writers
    if not units:
        return []
    wanted = target.shell.run(
        f"for unit in {' '.join(units)}; do "
        '{ systemctl is-active -q "$unit" || systemctl is-enabled -q "$unit"; } && echo "$unit"; done; true',
        "listing the writers",
    ).split()
    target.shell.run("systemctl stop " + " ".join(units), "stopping the writers")
    log(f"{target.node.name}: writers stopped: {', '.join(units)}")
    return wanted


def _start_writers(target: Target, units: list[str], log: Log) -> None:
    if units:
        target.shell.run("systemctl start " + " ".join(units), "starting the writers")
        log(f"{target.node.name}: writers started: {', '.join(units)}")


def load(profile: Profile, log: Log) -> dict:
    """The repository's baseline written into every data host's services; their checksums."""
    with targets(profile) as every:
        return _load(profile, every, log)


def _load(profile: Profile, every: list[Target], log: Log) -> dict:
    baseline = load_baseline(profile)
    model, results = baseline.model, {}
    for target in every:
        stopped = _stop_writers(target, log)
        try:
            for database in model.postgres:
                postgres_part.load(target, baseline, database)
                log(f"{target.node.name}: postgres {database.database} loaded")
            redis_part.write_keys(target, redis_part.from_baseline(model.redis))
            log(f"{target.node.name}: redis: {len(model.redis)} keys")
            if _enabled(profile, "nats"):
                client = NatsClient(target)
                try:
                    nats_part.load(client, model.nats.streams)
                finally:
                    client.close()
                log(f"{target.node.name}: nats: {len(model.nats.streams)} streams")
            if _enabled(profile, "openbao"):
                paths = Secret("the baseline's OpenBao paths", json.dumps(model.openbao.paths, sort_keys=True))
                openbao_part.write_paths(target, model.openbao.mount, paths)
                log(f"{target.node.name}: openbao: {len(model.openbao.paths)} paths under {model.openbao.mount}/")
        finally:
            _start_writers(target, stopped, log)
        results[target.node.name] = checksums(target, baseline)
    return results


def capture(profile: Profile, log: Log, bucket: bool = True) -> dict:
    """The services' current state kept as the baseline on every data host (and in the bucket as a set
    labelled `baseline`); the captured checksums by host."""
    with targets(profile) as every:
        results = _capture(profile, every, log)
    if bucket:
        with store.reaching(profile, "writing the baseline set"):
            manifest = backup_engine.back_up(profile, log=log, label=BASELINE)
            log(f"baseline backup set {manifest.set_id} written to {profile.backup.bucket}")
            backup_engine.replace_baselines(profile, manifest.set_id, log=log)
    return results


def _capture(profile: Profile, every: list[Target], log: Log) -> dict:
    baseline = load_baseline(profile)
    model, results = baseline.model, {}
    for target in every:
        snapshots = target.snapshots
        snapshots.begin()
        stopped = _stop_writers(target, log)
        try:
            captured: dict[str, dict] = {"postgres": {}}
            for database in model.postgres:
                captured["postgres"][database.database] = postgres_part.capture(target, database.database)
            keys = redis_part.read_keys(target)
            snapshots.write(REDIS_KEYS, _json_stream(keys))
            captured["redis"] = redis_part.checksums(keys)
            streams: list[str] = []
            if _enabled(profile, "nats"):
                client = NatsClient(target)
                try:
                    streams = nats_part.capture(client, snapshots)
                    captured["nats"] = nats_part.checksums(client)
                finally:
                    client.close()
            if _enabled(profile, "openbao"):
                paths = openbao_part.read_paths(target, model.openbao.mount)
                snapshots.write(VAULT_PATHS, _json_stream(json.loads(paths.reveal())))
                captured["openbao"] = openbao_part.checksums(paths)
        finally:
            _start_writers(target, stopped, log)
        for database in model.postgres:
            postgres_part.commit(target, database.database)
        snapshots.commit(
            {
                "captured": _now(),
                "source_sha": source_sha(),
                "baseline": baseline.digest(),
                "checksums_version": CHECKSUMS_VERSION,
                "streams": streams,
                "checksums": captured,
            }
        )
        log(f"{target.node.name}: baseline captured in {snapshots.directory} and the template databases")
        results[target.node.name] = captured
    return results


def _json_stream(data) -> io.BytesIO:
    return io.BytesIO(json.dumps(data, sort_keys=True).encode())


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ResetReport:
    """What a reset found: each host's checksums and differences, workflows ended, personas' sign-ins."""

    checksums: dict = field(default_factory=dict)
    differences: dict = field(default_factory=dict)
    terminated: dict = field(default_factory=dict)
    personas: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not any(self.differences.values())


def _index(target: Target) -> dict:
    index = target.snapshots.index()
    if index is None:
        raise RestoreRefused(
            f"{target.node.name}: no baseline was captured here ({target.snapshots.directory} has no index): "
            f"run the capture first ({MODE_ENV}=capture); nothing was changed"
        )
    if index.get("checksums_version") != CHECKSUMS_VERSION:
        raise RestoreRefused(
            f"{target.node.name}: the baseline in {target.snapshots.directory} was captured with checksums of "
            f"another kind than this version computes, so a reset could not be verified: capture it again "
            f"({MODE_ENV}=capture); nothing was changed"
        )
    return index


def reset(profile: Profile, log: Log) -> ResetReport:
    """Every data host's services returned to the captured baseline, then verified."""
    started = time.monotonic()
    with targets(profile) as every:
        report = _reset(profile, every, log)
    report.seconds = round(time.monotonic() - started, 2)
    return report


def _reset(profile: Profile, every: list[Target], log: Log) -> ResetReport:
    baseline = load_baseline(profile)
    report = ResetReport()
    indexes = {target.node.name: _index(target) for target in every}
    for target in every:
        index = indexes[target.node.name]
        stopped = _stop_writers(target, log)
        try:
            copies = _return_to_baseline(target, baseline, index, report)
            # Verified before the writers start again: what they write next is the demo being used.
            _verify(target, baseline, index["checksums"], copies, report)
        finally:
            _start_writers(target, stopped, log)
        _reset_realm(target, baseline, report, log)
    return report


def _return_to_baseline(target: Target, baseline: LoadedBaseline, index: dict, report: ResetReport) -> dict:
    """Each service of one data host put back as captured, the running workflows ended first; the
    checksums of the Postgres copies swapped in (equal to the capture's, or nothing was swapped)."""
    model, expected = baseline.model, index["checksums"]
    if temporal_part.applies(target):
        report.terminated[target.node.name] = temporal_part.terminate_running(target)
    copies = {
        database.database: postgres_part.reset(
            target, database.database, expected["postgres"].get(database.database, {})
        )
        for database in model.postgres
    }
    with target.snapshots.open(REDIS_KEYS, index) as stream:
        keys = json.loads(stream.read())
    redis_part.write_keys(target, keys)
    if "nats" in expected:
        client = NatsClient(target)
        try:
            nats_part.reset(client, target.snapshots, index, index.get("streams", []))
        finally:
            client.close()
    if "openbao" in expected:
        with target.snapshots.open(VAULT_PATHS, index) as stream:
            paths = Secret("the captured OpenBao paths", stream.read().decode())
        openbao_part.write_paths(target, model.openbao.mount, paths)
    return copies


def _verify(target: Target, baseline: LoadedBaseline, expected: dict, copies: dict, report: ResetReport) -> None:
    """The host's checksums read back and compared with the capture's (a Postgres copy's were taken
    before its swap, a rename that leaves the content as it is); no workflow may be running."""
    found = checksums(target, baseline, postgres=copies)
    report.checksums[target.node.name] = found
    report.differences[target.node.name] = differences(expected, found)
    if temporal_part.applies(target):
        still = {namespace: count for namespace, count in temporal_part.running(target).items() if count}
        report.differences[target.node.name] += [
            f"temporal.{namespace}: {count} workflows still running" for namespace, count in still.items()
        ]


def _reset_realm(target: Target, baseline: LoadedBaseline, report: ResetReport, log: Log) -> None:
    """The platform realm imported afresh and every persona signing in, when Keycloak is deployed."""
    profile = target.profile
    if not _keycloak_deployed(profile):
        return
    keycloak_part.reimport(target, keycloak_part.realm_import(profile, baseline.model))
    password = resolve(profile, baseline.model.persona_password)
    seed = resolve(profile, baseline.model.mfa_seed)
    realm = profile.services.keycloak.realm
    for persona in baseline.model.personas:
        report.personas[persona.username] = keycloak_part.sign_in(
            target, realm, persona, password, seed if persona.mfa == "totp" else None
        )
    log(f"{target.node.name}: realm {realm} imported; {len(baseline.model.personas)} personas checked")


def _keycloak_deployed(profile: Profile) -> bool:
    role = next((role for role in roles_in(Phase.DATA) if role.name == "keycloak"), None)
    return role is not None and role.not_deployed_because(profile) is None


def report_lines(report: ResetReport) -> list[str]:
    """The checksums, one line per table, key, stream and path, in a stable order (two resets to the same
    baseline print the same lines)."""
    lines = []
    for host, services in sorted(report.checksums.items()):
        for service, entries in sorted(services.items()):
            for name, value in sorted(entries.items()):
                if isinstance(value, dict):
                    lines += [f"{host} {service} {name} {table} {digest}" for table, digest in sorted(value.items())]
                else:
                    lines.append(f"{host} {service} {name} {value}")
    return lines
