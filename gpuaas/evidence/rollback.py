"""The rollback point of a packet: the newest earlier packet of the same environment that was green and
whose envelope verifies with the environment's own key. It is what a rollback returns to (its source
commit and its artifacts' sha256), and the packet lists what has changed since."""

from __future__ import annotations

import json
from pathlib import Path

from securesystemslib.signer import SSlibKey

from gpuaas.evidence import sign
from gpuaas.evidence.packet import ArtifactReadback, RollbackPoint, Source, Status
from gpuaas.evidence.written import envelopes
from gpuaas.profile import Profile


def point(
    profile: Profile,
    read_at: str,
    source: Source,
    artifacts: list[ArtifactReadback],
    candidates: list[Path] | None = None,
) -> RollbackPoint | None:
    """The rollback point for a packet of `profile` read at `read_at` from `source` with `artifacts`, among
    the environment's signed packets (newest first, or `candidates`); None when the profile signs nothing,
    its key cannot be used, or no earlier green packet verifies."""
    if profile.evidence.signing_key is None:
        return None
    try:
        key = SSlibKey.from_crypto(sign.private_key(profile).public_key())
    except sign.EvidenceError:
        return None  # the packet's writing names the key's problem
    for path in envelopes(profile.name) if candidates is None else candidates:
        try:
            document = json.loads(path.read_text())
            claimed = sign.envelope_packet(document)
            # Only a packet that says it could be the point is verified: verifying is the costly part.
            if claimed["environment"] != profile.name or claimed["read_at"] >= read_at or claimed["status"] != "ok":
                continue
            earlier = sign.verify(document, key, str(path)).packet
        except (OSError, ValueError, KeyError, TypeError, sign.EvidenceError):
            continue
        if earlier.environment != profile.name or earlier.read_at >= read_at or earlier.status is not Status.OK:
            continue
        proved = {artifact.name: artifact.sha256 for artifact in earlier.artifacts}
        return RollbackPoint(
            packet=path.name,
            read_at=earlier.read_at,
            source_sha=earlier.source.sha,
            artifacts=proved,
            changed=changes(proved, earlier.source.sha, source, artifacts),
        )
    return None


def changes(proved: dict[str, str], proved_sha: str, source: Source, artifacts: list[ArtifactReadback]) -> list[str]:
    """What a packet runs that its rollback point did not, in words."""
    lines = [f"source {proved_sha[:12]} → {source.sha[:12]}"] if proved_sha != source.sha else []
    for artifact in artifacts:
        before = proved.get(artifact.name)
        if before is None:
            lines.append(f"{artifact.name}: new ({artifact.version})")
        elif before != artifact.sha256:
            lines.append(f"{artifact.name}: sha256 {before[:12]}… → {artifact.sha256[:12]}… ({artifact.version})")
    current = {artifact.name for artifact in artifacts}
    lines += [f"{name}: no longer pinned" for name in sorted(set(proved) - current)]
    return lines
