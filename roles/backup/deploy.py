"""Deploys of roles/backup on the controller: a backup set and retention, a restore, a restore drill.
Each plans while the deploy is prepared (so --dry shows it) and acts while it executes."""

from __future__ import annotations

import json
import os

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, deploy, operation
from pyinfra.api.exceptions import DeployError

from gpuaas.backup import engine, store
from gpuaas.context import current_profile
from gpuaas.errors import SecretError
from gpuaas.profile import REPO_ROOT, Profile

#: The set a restore or drill reads (default `latest`: the newest complete set).
SET_ENV = "GPUAAS_BACKUP_SET"
#: Restore a set of another environment (its name): refused unless given.
FROM_ENV = "GPUAAS_RESTORE_FROM"
#: Restore only these services (comma-separated; default all in the set).
SERVICES_ENV = "GPUAAS_RESTORE_SERVICES"
CONFIRM_ENV = "GPUAAS_CONFIRM"


@deploy("Backup")
def backup() -> None:
    profile = current_profile()
    backup_set(name=f"Ensure a new complete backup set of {profile.name}", profile=profile)
    retention(
        name=f"Ensure retention keeps {profile.backup.keep_last} sets"
        + (f" and {profile.backup.keep_days} days" if profile.backup.keep_days else ""),
        profile=profile,
    )


@deploy("Restore")
def restore() -> None:
    profile = current_profile()
    plan = _plan(profile)
    restored(
        name=f"Ensure {profile.name}'s services hold backup set {plan.manifest.set_id}", profile=profile, plan=plan
    )


@deploy("Restore drill")
def restore_drill() -> None:
    profile = current_profile()
    plan = _plan(profile)
    drilled(
        name=f"Ensure backup set {plan.manifest.set_id} restores (scratch copies beside the live services)",
        profile=profile,
        plan=plan,
    )


def _plan(profile: Profile) -> engine.RestorePlan:
    source = os.environ.get(FROM_ENV) or None
    only = tuple(name.strip() for name in os.environ.get(SERVICES_ENV, "").split(",") if name.strip())
    unknown = [name for name in only if name not in {module.SERVICE for module in engine.service_parts()}]
    if unknown:
        raise DeployError(
            f"{SERVICES_ENV}: {', '.join(unknown)} is not a service with backups "
            f"({', '.join(module.SERVICE for module in engine.service_parts())})"
        )
    with store.reaching(profile, "reading the backup sets"):
        manifest = engine.choose_set(profile, os.environ.get(SET_ENV, "latest"), source)
    plan = engine.plan_restore(profile, manifest, allow_other_environment=source is not None, only=only)
    for line in plan.lines():
        logger.info(f"{host.print_prefix}restore plan: {line}")
    return plan


@operation(is_idempotent=False)
def backup_set(profile: Profile):
    """
    Write a new backup set: every service's artifacts streamed from the data hosts into the bucket
    (encrypted with age when the profile says so), the manifest last.

    + profile: the environment's profile
    """
    yield FunctionCommand(_reported, (engine.back_up, profile), {})


@operation(is_idempotent=False)
def retention(profile: Profile):
    """
    Remove the sets retention no longer keeps (never the newest complete set, never one being restored),
    holding the environment's backup lease; incomplete sets go only when no other run is live.

    + profile: the environment's profile
    """
    # pyinfra runs this body when the operation executes: the set this run wrote is already listed.
    try:
        doomed = engine.expiring(profile)
    except Exception as error:  # botocore's connection, credential and API errors alike
        raise DeployError(
            f"{profile.name}: the backup bucket {profile.backup.bucket} at {profile.backup.endpoint} "
            f"cannot be read ({error}); retention removed nothing"
        ) from None
    if not doomed:
        host.noop("no backup set to remove")
        return
    yield FunctionCommand(_reported, (engine.expire, profile), {})


@operation(is_idempotent=False)
def restored(profile: Profile, plan: engine.RestorePlan):
    """
    Restore the planned services from the set: every object checked against the manifest first,
    dependants stopped and started again, the services' figures compared with the manifest's.
    Refused unless GPUAAS_CONFIRM='restore ENV'.

    + profile: the environment's profile
    + plan: the set and where each service lands
    """
    yield FunctionCommand(_restore, (profile, plan), {})


@operation(is_idempotent=False)
def drilled(profile: Profile, plan: engine.RestorePlan):
    """
    Restore the set beside the live services and compare; the report goes to
    build/ENV/evidence/restore-drill.json and .md. Fails when any figure differs.

    + profile: the environment's profile
    + plan: the set and where each service lands
    """
    yield FunctionCommand(_drill, (profile, plan), {})


# pyinfra passes `state` and `host` to a callback only when its parameters have exactly these names.
def _reported(state, host, call, profile: Profile) -> bool:
    """Run a backup call while the deploy executes; on failure say why on the host's line."""
    try:
        call(profile, log=lambda line: logger.info(f"{host.print_prefix}{line}"))
    except (DeployError, SecretError) as error:
        host.log_styled(str(error), fg="red", log_func=logger.error)
        return False
    return True


def _restore(state, host, profile: Profile, plan: engine.RestorePlan) -> bool:
    wanted = f"restore {profile.name}"
    if os.environ.get(CONFIRM_ENV) != wanted:
        host.log_styled(
            f"restore is destructive and refused without {CONFIRM_ENV}='{wanted}'; nothing was changed",
            fg="red",
            log_func=logger.error,
        )
        return False
    try:
        results = engine.restore(profile, plan, log=lambda line: logger.info(f"{host.print_prefix}{line}"))
    except (DeployError, SecretError) as error:
        host.log_styled(str(error), fg="red", log_func=logger.error)
        return False
    failed = {key: lines for key, lines in results.items() if lines}
    for key, lines in failed.items():
        host.log_styled(f"{key} does not match the manifest: {'; '.join(lines)}", fg="red", log_func=logger.error)
    return not failed


def _drill(state, host, profile: Profile, plan: engine.RestorePlan) -> bool:
    try:
        report = engine.drill(profile, plan, log=lambda line: logger.info(f"{host.print_prefix}{line}"))
    except (DeployError, SecretError) as error:
        host.log_styled(str(error), fg="red", log_func=logger.error)
        return False
    path = write_drill_report(profile, report)
    logger.info(f"{host.print_prefix}restore drill {'passed' if report['passed'] else 'FAILED'}: {path}")
    return report["passed"]


def write_drill_report(profile: Profile, report: dict):
    directory = REPO_ROOT / "build" / profile.name / "evidence"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "restore-drill.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    lines = [
        f"# Restore drill of {report['set']}: {'passed' if report['passed'] else 'FAILED'}",
        "",
        f"Source {report['source_sha']}; drill {report['started']} to {report['ended']}.",
        "",
        "| service | result | differences |",
        "|---|---|---|",
    ]
    for key, entry in sorted(report["services"].items()):
        lines.append(
            f"| {key} | {'match' if not entry['differences'] else 'differs'} | "
            f"{'; '.join(entry['differences']) or '-'} |"
        )
    path = directory / "restore-drill.md"
    path.write_text("\n".join(lines) + "\n")
    return path
