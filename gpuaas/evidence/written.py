"""Where packets are kept: build/ENV/evidence/TIME.json, .md, .html and .dsse.json (the signed envelope),
and, when the profile asks, the same files in the backup bucket under evidence/ENV/."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gpuaas.backup import store
from gpuaas.evidence import render, sign
from gpuaas.evidence.packet import Packet
from gpuaas.profile import REPO_ROOT, Profile

ENVELOPE_SUFFIX = ".dsse.json"


def evidence_dir(environment: str, repo_root: Path = REPO_ROOT) -> Path:
    return repo_root / "build" / environment / "evidence"


def stamp(packet: Packet) -> str:
    """`2026-12-02T21:40:00Z` -> `20261202T214000Z`: the packet's files' common name."""
    return packet.read_at.replace("-", "").replace(":", "")


@dataclass(frozen=True)
class Written:
    packet: Path
    summary: Path
    page: Path
    envelope: Path | None


def write(profile: Profile, packet: Packet, directory: Path | None = None) -> Written:
    """Write the packet, its summary and page, and its envelope when the profile names a signing key
    (raises EvidenceError when the key is named but cannot be used; the unsigned files are kept)."""
    directory = directory or evidence_dir(profile.name)
    directory.mkdir(parents=True, exist_ok=True)
    base = directory / stamp(packet)
    paths = Written(
        base.with_suffix(".json"),
        base.with_suffix(".md"),
        base.with_suffix(".html"),
        base.with_name(base.name + ENVELOPE_SUFFIX) if profile.evidence.signing_key else None,
    )
    paths.packet.write_text(packet.json_text())
    paths.summary.write_text(render.markdown(packet))
    paths.page.write_text(render.html(packet))
    if paths.envelope is not None:
        envelope = sign.sign(packet, sign.private_key(profile))
        paths.envelope.write_text(json.dumps(envelope, indent=2) + "\n")
    return paths


def upload(profile: Profile, written: Written) -> list[str]:
    """Copy the packet's files into the backup bucket under evidence/ENV/; the keys written."""
    s3 = store.client(profile)
    keys = []
    with store.reaching(profile, "uploading the evidence packet"):
        for path in (written.packet, written.summary, written.page, written.envelope):
            if path is not None:
                key = f"evidence/{profile.name}/{path.name}"
                s3.put_object(Bucket=profile.backup.bucket, Key=key, Body=path.read_bytes())
                keys.append(key)
    return keys


def envelopes(environment: str, repo_root: Path = REPO_ROOT) -> list[Path]:
    """The environment's signed packets, newest first."""
    return sorted(evidence_dir(environment, repo_root).glob(f"*{ENVELOPE_SUFFIX}"), reverse=True)
