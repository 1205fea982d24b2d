"""Deploy of roles/demo on the controller: load, capture or reset the demo's baseline (GPUAAS_RESET). The
plan and the refusals are decided while the deploy is prepared, so --dry shows them and changes nothing."""

from __future__ import annotations

import json
import os

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, deploy, operation
from pyinfra.api.exceptions import DeployError

from gpuaas.context import current_profile
from gpuaas.errors import ProfileError, SecretError
from gpuaas.profile import REPO_ROOT, Profile
from roles.demo import engine
from roles.demo.baseline import load_baseline, settings_for


@deploy("Demo baseline")
def demo_reset() -> None:
    profile = current_profile()
    chosen = engine.mode()
    # The environment is refused before anything else is read: no flag or confirmation makes prod a demo.
    refused = engine.environment_refusal(profile, chosen)
    if refused is not None:
        raise DeployError(refused)
    try:
        baseline = load_baseline(profile)
    except ProfileError as error:
        raise DeployError(error.report()) from None
    for line in plan(profile, chosen, baseline.source):
        logger.info(f"{host.print_prefix}{chosen} plan: {line}")
    {"reset": reset, "capture": capture, "load": load}[chosen](
        name=f"Ensure {profile.name} is {'at' if chosen != 'capture' else 'kept as'} its baseline ({chosen})",
        profile=profile,
    )


def plan(profile: Profile, chosen: str, source: str) -> list[str]:
    settings = settings_for(profile)
    hosts = ", ".join(node.name for node in profile.group("data"))
    steps = {
        "load": f"write {source} into the data services of {hosts}",
        "capture": f"keep the services of {hosts} as the baseline ({settings.snapshot_dir}, template "
        f"databases) and write a backup set labelled baseline to {profile.backup.bucket}",
        "reset": f"return the services of {hosts} to the captured baseline and verify the checksums",
    }
    lines = [steps[chosen]]
    if settings.writers:
        lines.append(f"writers stopped meanwhile: {', '.join(settings.writers)}")
    return lines


def _refused(host, profile: Profile, chosen: str) -> bool:
    refused = engine.refusal(profile, chosen, os.environ.get(engine.CONFIRM_ENV))
    if refused is not None:
        host.log_styled(refused, fg="red", log_func=logger.error)
    return refused is not None


def _log(host):
    return lambda line: logger.info(f"{host.print_prefix}{line}")


def _failed(host, error: Exception) -> bool:
    host.log_styled(str(error), fg="red", log_func=logger.error)
    return False


@operation(is_idempotent=False)
def reset(profile: Profile):
    """
    Stop the writers, return every data service to the captured baseline, start the writers, and verify
    the checksums; they are printed and kept in build/ENV/evidence/demo-reset.json. Refused outside demo
    and local, and without GPUAAS_CONFIRM='reset ENV'.

    + profile: the environment's profile
    """
    yield FunctionCommand(_reset, (profile,), {})


@operation(is_idempotent=False)
def capture(profile: Profile):
    """
    Keep the services' current state as the baseline (template databases, snapshots on the data hosts, a
    backup set labelled baseline). Refused without GPUAAS_CONFIRM='capture ENV'.

    + profile: the environment's profile
    """
    yield FunctionCommand(_capture, (profile,), {})


@operation(is_idempotent=False)
def load(profile: Profile):
    """
    Write the repository's baseline into the data services, replacing what they hold. Refused without
    GPUAAS_CONFIRM='reset ENV'.

    + profile: the environment's profile
    """
    yield FunctionCommand(_load, (profile,), {})


# pyinfra passes `state` and `host` to a callback only when its parameters have exactly these names.
def _reset(state, host, profile: Profile) -> bool:
    if _refused(host, profile, "reset"):
        return False
    try:
        report = engine.reset(profile, log=_log(host))
    except (DeployError, SecretError) as error:
        return _failed(host, error)
    for line in engine.report_lines(report):
        logger.info(f"{host.print_prefix}checksum {line}")
    for persona, result in sorted(report.personas.items()):
        logger.info(f"{host.print_prefix}persona {persona}: {result}")
    path = write_report(profile, report)
    for node, lines in sorted(report.differences.items()):
        for line in lines:
            host.log_styled(f"{node}: differs from the baseline: {line}", fg="red", log_func=logger.error)
    verdict = "matches the baseline" if report.passed else "DIFFERS from the baseline"
    logger.info(f"{host.print_prefix}reset in {report.seconds} s: {verdict} ({path})")
    return report.passed


def _capture(state, host, profile: Profile) -> bool:
    return _carried_out(host, profile, "capture", engine.capture)


def _load(state, host, profile: Profile) -> bool:
    return _carried_out(host, profile, "load", engine.load)


def _carried_out(host, profile: Profile, chosen: str, call) -> bool:
    """`call(profile, log)` once the run is confirmed; on failure say why on the host's line."""
    if _refused(host, profile, chosen):
        return False
    try:
        call(profile, log=_log(host))
    except (DeployError, SecretError) as error:
        return _failed(host, error)
    return True


def write_report(profile: Profile, report: engine.ResetReport):
    directory = REPO_ROOT / "build" / profile.name / "evidence"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "demo-reset.json"
    body = {
        "passed": report.passed,
        "seconds": report.seconds,
        "checksums": report.checksums,
        "differences": report.differences,
        "terminated": report.terminated,
        "personas": report.personas,
    }
    path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    return path.relative_to(REPO_ROOT)
