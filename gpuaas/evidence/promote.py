"""The promotion check: may an environment (prod) run what its profile pins, on the evidence of the
environment it is promoted from (staging)? Every artifact it pins must have the sha256 one of that
environment's newest green, verified, fresh packet proved, read back from the same source commit.
The outcome is a short Markdown text that fits a pull-request comment."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path

from gpuaas.evidence.packet import Packet, Status
from gpuaas.evidence.sign import EvidenceError, Verified, load_public_key, verify
from gpuaas.evidence.written import envelopes
from gpuaas.profile import Profile, local_path


@dataclass
class Outcome:
    target: str
    origin: str
    chosen: Verified | None = None
    chosen_path: Path | None = None
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: list[tuple[str, str, str, bool]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.chosen is not None and not self.differences

    def markdown(self) -> str:
        verdict = "✅ may be promoted" if self.passed else "❌ refused"
        lines = [f"### Promotion {self.origin} → {self.target}: {verdict}", ""]
        if self.chosen is not None:
            packet = self.chosen.packet
            lines += [
                f"{self.origin}'s packet `{self.chosen_path.name}`: read {packet.read_at}, status "
                f"{packet.status.value}, source `{packet.source.sha[:12]}`, signed by key `{self.chosen.keyid[:16]}`.",
                "",
            ]
        if self.rows:
            lines += [f"| artifact | {self.target} pins | {self.origin} proved | |", "|---|---|---|---|"]
            lines += [
                f"| {name} | `{pinned}` | `{proved}` | {'✅' if same else '❌'} |"
                for name, pinned, proved, same in self.rows
            ]
            lines.append("")
        if self.differences:
            lines += ["**Differences**", ""] + [f"- {line}" for line in self.differences]
        if self.notes:
            lines += ["", "Notes:"] + [f"- {line}" for line in self.notes]
        return "\n".join(lines).rstrip() + "\n"


def short(digest: str | None) -> str:
    return f"{digest[:12]}…" if digest else "—"


def check(
    target: Profile,
    origin: str,
    source_sha: str,
    candidates: list[Path] | None = None,
    now: datetime.datetime | None = None,
) -> Outcome:
    """Check `target`'s pins against `origin`'s packets (its signed packets under build/ORIGIN/evidence,
    newest first, or the `candidates` given). `source_sha` is the commit `target` would be deployed
    from (`-dirty` when the tree differs from it)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    outcome = Outcome(target.name, origin)
    key_file = target.evidence.trusted_keys.get(origin)
    if key_file is None:
        outcome.differences.append(
            f"{target.source}: evidence.trusted_keys.{origin} is not set: no packet of {origin} can be trusted"
        )
        return outcome
    where = f"{target.source}: evidence.trusted_keys.{origin} ({key_file})"
    try:
        public_key = load_public_key(local_path(key_file).read_bytes(), where)
    except OSError as error:
        outcome.differences.append(f"{where}: cannot be read ({error.strerror})")
        return outcome
    except EvidenceError as error:
        outcome.differences.append(str(error))
        return outcome
    candidates = envelopes(origin) if candidates is None else candidates
    if not candidates:
        outcome.differences.append(f"no signed packet of {origin} (deploys/readback.py against {origin} writes one)")
        return outcome
    for path in candidates:
        try:
            verified = verify(json.loads(path.read_text()), public_key, str(path))
        except (OSError, ValueError) as error:
            outcome.differences.append(f"{path}: cannot be read as JSON ({error})")
            continue
        except EvidenceError as error:
            outcome.differences.append(f"refused: {error}")
            continue
        if verified.packet.environment != origin:
            outcome.differences.append(f"{path}: a packet of {verified.packet.environment}, not of {origin}")
            continue
        if verified.packet.status is not Status.OK:
            outcome.notes.append(f"{path.name} is {verified.packet.status.value}, not green: passed over")
            continue
        outcome.chosen, outcome.chosen_path = verified, path
        break
    if outcome.chosen is None:
        outcome.differences.append(f"no verified green packet of {origin} among {len(candidates)}")
        return outcome
    _compare(outcome, target, outcome.chosen.packet, source_sha, now)
    return outcome


def _compare(outcome: Outcome, target: Profile, packet: Packet, source_sha: str, now: datetime.datetime) -> None:
    origin = outcome.origin
    read_at = datetime.datetime.strptime(packet.read_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    age = now - read_at
    if age > datetime.timedelta(days=target.evidence.max_age_days):
        outcome.differences.append(
            f"{origin}'s packet is stale: read {age.days} days ago, evidence.max_age_days is "
            f"{target.evidence.max_age_days}"
        )
    if packet.source.dirty:
        outcome.differences.append(f"{origin}'s packet was read back from a dirty tree: its source is not a commit")
    if source_sha.endswith("-dirty"):
        outcome.differences.append(f"{target.name} would be deployed from a dirty tree ({source_sha[:12]}…)")
    if source_sha.removesuffix("-dirty") != packet.source.sha:
        outcome.differences.append(
            f"source: {target.name} would be deployed from `{source_sha.removesuffix('-dirty')[:12]}`, "
            f"{origin} proved `{packet.source.sha[:12]}`"
        )
    proved = {artifact.name: artifact for artifact in packet.artifacts}
    for name, pin in sorted(target.artifacts.items()):
        seen = proved.get(name)
        same = seen is not None and seen.sha256 == pin.sha256 and seen.status is Status.OK
        outcome.rows.append(
            (name, f"{pin.version} {short(pin.sha256)}", f"{seen.version} {short(seen.sha256)}" if seen else "—", same)
        )
        if seen is None:
            outcome.differences.append(f"{name}: {target.name} pins {pin.version}; {origin}'s packet does not have it")
        elif seen.sha256 != pin.sha256:
            outcome.differences.append(
                f"{name}: {target.name} pins sha256 {short(pin.sha256)} ({pin.version}); {origin} proved "
                f"{short(seen.sha256)} ({seen.version})"
            )
        elif seen.status is not Status.OK:
            outcome.differences.append(f"{name}: {origin} read it back as {seen.status.value}: {seen.message}")
    extra = sorted(set(proved) - set(target.artifacts))
    if extra:
        outcome.notes.append(f"{origin} also runs {', '.join(extra)}, which {target.name} does not pin")
