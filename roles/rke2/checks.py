"""Shell tests of the cluster's state through kubectl on a server (true/false exit status)."""

from __future__ import annotations

import shlex

from roles.rke2.config import KUBECONFIG, KUBECTL

READY = '{.status.conditions[?(@.type=="Ready")].status}'


def kubectl(command: str) -> str:
    return f"{KUBECTL} --kubeconfig {KUBECONFIG} {command}"


def api_ready() -> str:
    """The API server answers `ok` on /readyz (asked with the admin kubeconfig: anonymous requests may be off)."""
    return f'[ "$({kubectl("get --raw /readyz")} 2>/dev/null)" = ok ]'


def node_ready(node: str, version: str | None = None) -> str:
    """`node` is Ready (and runs `version`, when given)."""
    name = shlex.quote(node)
    test = f'[ "$({kubectl(f"get node {name} -o jsonpath={shlex.quote(READY)}")} 2>/dev/null)" = True ]'
    if version:
        kubelet = kubectl(f"get node {name} -o jsonpath='{{.status.nodeInfo.kubeletVersion}}'")
        test += f' && [ "$({kubelet} 2>/dev/null)" = {shlex.quote(version)} ]'
    return test


def nodes_listing() -> str:
    """Prints `name=Ready-status ` for every node."""
    return kubectl(f"get nodes -o jsonpath='{{range .items[*]}}{{.metadata.name}}={READY} {{end}}' 2>/dev/null")


def all_ready(names: list[str]) -> str:
    """Every node of `names` is Ready (sets $ready to the listing, for the message when it is not)."""
    tests = (f'echo "$ready" | grep -qF -- {shlex.quote(f" {name}=True ")}' for name in names)
    return f'ready=" $({nodes_listing()}) "; ' + " && ".join(tests)


def wait(test: str, seconds: int, failure: str) -> str:
    """Poll `test` every second for `seconds`; then fail with `failure` on stderr."""
    return (
        f"for i in $(seq {int(seconds)}); do {{ {test} ; }} && exit 0; sleep 1; done; "
        f"echo {shlex.quote(failure)} >&2; exit 1"
    )
