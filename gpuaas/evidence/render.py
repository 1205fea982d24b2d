"""The packet as people read it: a Markdown summary (fits a pull request or a ticket) and an HTML page
with a table per layer, green, amber and red."""

from __future__ import annotations

from pathlib import Path

import jinja2

from gpuaas.evidence.packet import Packet, Status

TEMPLATES = Path(__file__).parent / "templates"
MARK = {Status.OK: "🟢 ok", Status.BLOCKED: "🟠 blocked", Status.DRIFT: "🔴 drift", Status.FAILED: "🔴 failed"}


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown(packet: Packet) -> str:
    lines = [
        f"# Evidence of {packet.environment}: {MARK[packet.status]}",
        "",
        f"Read {packet.read_at} from source `{packet.source.sha}`{' (dirty tree)' if packet.source.dirty else ''}; "
        f"profile {packet.profile.source}, digest `{packet.profile.digest[:16]}…`.",
        "",
        f"UAT package: {packet.inputs.uat_package or 'not passed in'}; "
        f"portal build: {packet.inputs.portal_build or 'not passed in'}.",
    ]
    for layer, items in packet.by_layer().items():
        lines += ["", f"## {layer.value[0].upper() + layer.value[1:]}", ""]
        if not items:
            lines.append("Nothing in this layer.")
            continue
        lines += ["| status | item | host | found |", "|---|---|---|---|"]
        lines += [
            f"| {MARK[i.status]} | {cell(i.name)} | {i.host or 'controller'} | {cell(i.message)} |" for i in items
        ]
    lines += ["", "## Artifacts", "", "| status | artifact | pinned | sha256 |", "|---|---|---|---|"]
    lines += [f"| {MARK[a.status]} | {a.name} | {a.version} | `{a.sha256[:16]}…` |" for a in packet.artifacts]
    lines += ["", "## Blocked", ""]
    lines += [f"- {cell(line)}" for line in packet.blocked] or ["Nothing."]
    lines += ["", "## Rollback", "", *rollback_lines(packet)]
    return "\n".join(lines) + "\n"


def rollback_lines(packet: Packet) -> list[str]:
    point = packet.rollback
    if point is None:
        return [f"No earlier green packet of {packet.environment} verifies: nothing proven to roll back to."]
    lines = [f"Rolls back to `{point.packet}`: read {point.read_at}, source `{point.source_sha}`."]
    if point.changed:
        lines += ["", "Changed since:", ""] + [f"- {cell(line)}" for line in point.changed]
    else:
        lines += ["", "Nothing pinned has changed since."]
    return lines


def html(packet: Packet) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return environment.get_template("packet.html.j2").render(packet=packet)
