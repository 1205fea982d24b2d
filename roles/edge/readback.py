"""What the zone serves for the environment, read back from Cloudflare: its records, proxied state,
SSL/TLS mode and the Origin CA certificates' expiry, as JSON and Markdown under build/ENV/evidence/."""

from __future__ import annotations

import json
import time

from cloudflare import Cloudflare

from gpuaas.profile import REPO_ROOT, Profile
from roles.edge.cloudflare_api import api_errors, live_records, ssl_mode
from roles.edge.dns import owner_comment


def read(api: Cloudflare, profile: Profile, zone: str) -> dict:
    marker = owner_comment(profile)
    records = [
        {"name": r.name, "type": r.type, "content": r.content, "proxied": r.proxied, "owned": r.comment == marker}
        for r in live_records(api, profile, zone)
        if r.name in {str(d.name) for d in profile.dns.records} or r.comment == marker
    ]
    with api_errors(profile, "listing the Origin CA certificates"):
        certificates = [
            {"id": c.id, "hostnames": list(c.hostnames or []), "expires_on": str(c.expires_on)}
            for c in api.origin_ca_certificates.list(zone_id=zone)
        ]
    return {
        "environment": profile.name,
        "zone": profile.dns.zone,
        "read_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "ssl_mode": ssl_mode(api, profile, zone),
        "records": records,
        "origin_certificates": certificates,
    }


def write(profile: Profile, evidence: dict) -> None:
    directory = REPO_ROOT / "build" / profile.name / "evidence"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "edge.json").write_text(json.dumps(evidence, indent=2) + "\n")
    lines = [
        f"# Edge of {profile.name} ({evidence['zone']}), read {evidence['read_at']}",
        "",
        f"SSL/TLS mode: {evidence['ssl_mode']}",
        "",
        "| name | type | content | proxied | owned |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['name']} | {r['type']} | {r['content']} | {r['proxied']} | {r['owned']} |" for r in evidence["records"]
    ]
    lines += ["", "| Origin CA certificate | hostnames | expires |", "|---|---|---|"]
    lines += [
        f"| {c['id']} | {', '.join(c['hostnames'])} | {c['expires_on']} |" for c in evidence["origin_certificates"]
    ]
    (directory / "edge.md").write_text("\n".join(lines) + "\n")


def refresh(api: Cloudflare, profile: Profile, zone: str) -> None:
    write(profile, read(api, profile, zone))
