"""The demo baseline's Temporal part: the running workflows of the platform's namespaces (the temporal
role's `namespaces`) terminated, so that no workflow started during the demo goes on writing after a reset."""

from __future__ import annotations

import json
import shlex

from gpuaas.backup.service import ServiceHost
from roles.temporal.config import PROGRAM_LINK, settings_for

RUNNING = 'ExecutionStatus="Running"'
REASON = "demo reset to its baseline"

#: Prints each running workflow of a namespace as `ID RUN_ID`, one per line, from `workflow list -o json`.
_IDS = (
    "import json, sys\n"
    "for entry in json.loads(sys.stdin.read() or '[]') or []:\n"
    "    execution = entry.get('execution', {})\n"
    "    print(execution.get('workflowId', ''), execution.get('runId', ''))\n"
)


def applies(target: ServiceHost) -> bool:
    return settings_for(target.profile).enabled


def _options(target: ServiceHost, namespace: str) -> str:
    settings = settings_for(target.profile)
    return f"--address {shlex.quote(f'{target.node.address}:{settings.port}')} --namespace {shlex.quote(namespace)}"


def running(target: ServiceHost) -> dict[str, int]:
    """{namespace: workflows running} of the platform's namespaces."""
    found = {}
    for namespace in settings_for(target.profile).namespaces:
        listed = target.shell.run(
            f"{PROGRAM_LINK} workflow list {_options(target, namespace)} --query {shlex.quote(RUNNING)} -o json",
            f"listing the running workflows of {namespace}",
        )
        found[namespace] = len(json.loads(listed or "[]") or [])
    return found


def terminate_running(target: ServiceHost) -> dict[str, int]:
    """Every running workflow of the platform's namespaces terminated; {namespace: how many}."""
    ended = {}
    for namespace in settings_for(target.profile).namespaces:
        options = _options(target, namespace)
        output = target.shell.run(
            f"{PROGRAM_LINK} workflow list {options} --query {shlex.quote(RUNNING)} -o json | "
            f'python3 -c {shlex.quote(_IDS)} | {{ count=0; while read -r id run; do [ -n "$id" ] || continue; '
            f'{PROGRAM_LINK} workflow terminate {options} --workflow-id "$id" --run-id "$run" '
            f"--reason {shlex.quote(REASON)} >/dev/null || exit 1; count=$((count + 1)); done; echo $count; }}",
            f"terminating the running workflows of {namespace}",
        )
        ended[namespace] = int(output.strip() or 0)
    return ended
