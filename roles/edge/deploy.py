"""Deploy of roles/edge on the controller: plan the zone's records against the profile, print and
record the plan, then apply it in one batch; set the zone's SSL/TLS mode."""

from __future__ import annotations

import json
import os

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, deploy, operation

from gpuaas.context import current_profile
from gpuaas.profile import REPO_ROOT, Profile
from roles.edge import readback
from roles.edge.cloudflare_api import EdgeError, apply, client, live_records, set_ssl_mode, ssl_mode, zone_id
from roles.edge.dns import Plan, over_limit, plan

#: Set to `yes` to apply a plan that changes more of the owned records than `dns.max_change_share`.
FORCE_ENV = "GPUAAS_FORCE_DNS"
#: `fail` or `report`: overrides the profile's `dns.on_conflict` (CI sets `fail`).
ON_CONFLICT_ENV = "GPUAAS_DNS_ON_CONFLICT"


def plan_path(profile: Profile):
    return REPO_ROOT / "build" / profile.name / "dns-plan.json"


def on_conflict(profile: Profile) -> str:
    """What a conflict does to the run: `report` it, or `fail` the run once the rest is applied."""
    chosen = os.environ.get(ON_CONFLICT_ENV, "").strip()
    if chosen and chosen not in ("report", "fail"):
        raise EdgeError(
            f"{ON_CONFLICT_ENV}={chosen!r}: must be `report` or `fail` (or unset for the profile's "
            f"dns.on_conflict, {profile.dns.on_conflict}); nothing was changed"
        )
    return chosen or profile.dns.on_conflict


@deploy("Edge (Cloudflare)")
def edge() -> None:
    profile = current_profile()
    conflicts = on_conflict(profile)
    api = client(profile)
    zone = zone_id(api, profile)
    planned = plan(profile, live_records(api, profile, zone))
    path = plan_path(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"zone": profile.dns.zone, **planned.as_json()}, indent=2) + "\n")
    for line in planned.lines() or ["no change"]:
        # A conflict is a name this environment cannot have until someone frees it: say it louder.
        (logger.warning if line.startswith("!") else logger.info)(f"{host.print_prefix}DNS {profile.dns.zone}: {line}")
    if over_limit(planned, profile.dns.max_change_share) and os.environ.get(FORCE_ENV) != "yes":
        touched = len(planned.update) + len(planned.delete)
        raise EdgeError(
            f"{profile.name}: the plan would change or delete {touched} of the {planned.owned} records this "
            f"environment owns in {profile.dns.zone}, more than dns.max_change_share "
            f"({profile.dns.max_change_share:.0%}); nothing was changed (review {path}; {FORCE_ENV}=yes applies it)"
        )
    # What the zone serves now; a change below reads it again once applied.
    readback.refresh(api, profile, zone)
    dns_records(
        name=f"Ensure the DNS records of {profile.dns.zone} are as planned", profile=profile, zone=zone, planned=planned
    )
    if profile.dns.ssl_mode is not None:
        zone_ssl_mode(
            name=f"Ensure {profile.dns.zone} uses SSL/TLS mode {profile.dns.ssl_mode}",
            profile=profile,
            zone=zone,
            mode=profile.dns.ssl_mode,
        )
    # Last, so that everything safe is applied before a conflict fails the run.
    dns_names_free(
        name=f"Ensure every wanted name in {profile.dns.zone} is free of records of others",
        conflicts=planned.conflicts,
        on_conflict=conflicts,
    )


@operation(is_idempotent=False)
def dns_records(profile: Profile, zone: str, planned: Plan):
    """
    Apply the plan to the zone in one batch (Cloudflare applies a batch whole or not at all), sent once;
    when the answer is lost (5xx, time-out) the zone read back says what was applied.

    + profile: the environment's profile
    + zone: the zone's id
    + planned: the plan made against the zone's live records
    """
    if planned.empty():
        host.noop(f"{len(planned.unchanged)} records as planned")
        return
    yield FunctionCommand(_reported, (apply, profile, zone, planned), {})


@operation(is_idempotent=False)
def zone_ssl_mode(profile: Profile, zone: str, mode: str):
    """
    Set the zone's SSL/TLS mode (`strict` is Full (strict): Cloudflare verifies the origin's certificate).

    + profile: the environment's profile
    + zone: the zone's id
    + mode: off, flexible, full or strict
    """
    if ssl_mode(client(profile), profile, zone) == mode:
        host.noop(f"SSL/TLS mode is {mode}")
        return
    yield FunctionCommand(_reported, (set_ssl_mode, profile, zone, mode), {})


@operation(is_idempotent=False)
def dns_names_free(conflicts: list[str], on_conflict: str):
    """
    Fail the run when a wanted name is held by a record the environment does not own and `on_conflict`
    is `fail`; with `report` the conflicts stay warnings of the plan. Changes nothing in the zone.

    + conflicts: the plan's conflicts, one line each
    + on_conflict: report or fail
    """
    if not conflicts:
        host.noop("no conflict")
        return
    if on_conflict == "report":
        host.noop(f"{_conflicts(conflicts)} reported (on_conflict: report)")
        return
    yield FunctionCommand(_conflicts_fail, (conflicts,), {})


# pyinfra passes `state` and `host` to a callback only when its parameters have exactly these names.
def _reported(state, host, call, profile: Profile, *arguments) -> bool:
    """Run an API call while the deploy executes; on failure say why on the host's line (no traceback).
    A write whose answer was lost but that reading back shows applied is a warning, and the run goes on."""
    try:
        api = client(profile)
        note = call(api, profile, *arguments)
        if note:
            host.log_styled(note, fg="yellow", log_func=logger.warning)
        readback.refresh(api, profile, arguments[0])
    except EdgeError as error:
        host.log_styled(str(error), fg="red", log_func=logger.error)
        return False
    return True


def _conflicts_fail(state, host, conflicts: list[str]) -> bool:
    """Name each conflict on the host's line and fail the operation, which makes the run exit non-zero."""
    for line in conflicts:
        host.log_styled(f"DNS conflict: {line}", fg="red", log_func=logger.error)
    host.log_styled(
        f"{_conflicts(conflicts)} and on_conflict is fail (dns.on_conflict or {ON_CONFLICT_ENV}); "
        "everything else was applied",
        fg="red",
        log_func=logger.error,
    )
    return False


def _conflicts(conflicts: list[str]) -> str:
    return f"{len(conflicts)} DNS conflict{'s' if len(conflicts) != 1 else ''}"
