"""Facts roles/rke2 reads back: the installed version, the API's readiness and the nodes."""

from __future__ import annotations

import json
import shlex

from pyinfra.api import FactBase

from roles.rke2.config import HEADER, OPTIONAL_FILES


class Rke2Version(FactBase):
    """The installed rke2's version (`v1.30.4+rke2r1`), or None when it is not installed."""

    def command(self, program: str) -> str:
        return f"{program} --version 2>/dev/null | head -n 1 || true"

    def process(self, output: list[str]) -> str | None:
        words = output[0].split() if output else []
        return words[2] if len(words) > 2 and words[:2] == ["rke2", "version"] else None


class ApiReady(FactBase):
    """True when the API server answers `ok` on /readyz (asked with the admin kubeconfig)."""

    def command(self, kubectl: str, kubeconfig: str) -> str:
        return f"{kubectl} --kubeconfig {kubeconfig} get --raw /readyz 2>/dev/null || true"

    def process(self, output: list[str]) -> bool:
        return bool(output) and output[-1].strip() == "ok"


class Nodes(FactBase):
    """Node name -> {"ready": bool, "unschedulable": bool, "version": kubelet version}, as the API sees them."""

    default = dict

    def command(self, kubectl: str, kubeconfig: str) -> str:
        return f"{kubectl} --kubeconfig {kubeconfig} get nodes -o json 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, dict]:
        try:
            items = json.loads("\n".join(output)).get("items", [])
        except ValueError:
            return {}
        nodes = {}
        for item in items:
            conditions = {c["type"]: c["status"] for c in item.get("status", {}).get("conditions", [])}
            nodes[item["metadata"]["name"]] = {
                "ready": conditions.get("Ready") == "True",
                "unschedulable": bool(item.get("spec", {}).get("unschedulable")),
                "version": item.get("status", {}).get("nodeInfo", {}).get("kubeletVersion"),
            }
        return nodes


class OptionalFiles(FactBase):
    """The files of roles/rke2.config.OPTIONAL_FILES the role wrote (their first line is its header), as
    a sorted list of paths; an operator's own files in the same places are not listed."""

    default = list

    def command(self) -> str:
        header = shlex.quote(HEADER.strip())
        # The patterns are the role's own constants: left unquoted so that the shell expands them.
        return (
            f"for f in {' '.join(OPTIONAL_FILES)}; do "
            f'[ -f "$f" ] && [ "$(head -n 1 "$f")" = {header} ] && printf \'%s\\n\' "$f"; done; true'
        )

    def process(self, output: list[str]) -> list[str]:
        return sorted(line.strip() for line in output if line.strip())
