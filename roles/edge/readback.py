"""What the zone serves for the environment, read back from Cloudflare: its records, proxied state,
SSL/TLS mode and the Origin CA certificates' expiry, as JSON and Markdown under build/ENV/evidence/."""

from __future__ import annotations

import datetime
import json
import time

from cloudflare import Cloudflare

from gpuaas.profile import REPO_ROOT, Profile
from roles.edge.cloudflare_api import EdgeError, api_errors, client, live_records, ssl_mode, zone_id
from roles.edge.dns import owner_comment, plan


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


def evidence_items(profile: Profile, now: datetime.datetime | None = None) -> list[dict]:
    """The edge's part of an evidence packet, read from Cloudflare: each desired name with its record
    (drift when the zone differs from the profile), the SSL/TLS mode and each Origin CA certificate's
    expiry. When Cloudflare cannot be read, one blocked item says why (no secret in it)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    try:
        api = client(profile, timeout=10).with_options(max_retries=1)
        zone = zone_id(api, profile)
        live = live_records(api, profile, zone)
        found = read(api, profile, zone)
    except EdgeError as error:
        return [{"name": f"zone {profile.dns.zone}", "status": "blocked", "message": f"not read: {error}"}]
    planned = plan(profile, live)
    pending = {r.name for r in planned.create} | {wanted.name for _, wanted in planned.update}
    items = []
    for entry in profile.dns.records:
        served = [r for r in found["records"] if r["name"] == str(entry.name)]
        shown = ", ".join(f"{r['type']} {r['content']}{' (proxied)' if r['proxied'] else ''}" for r in served)
        if str(entry.name) in pending:
            status, message = "drift", f"the zone serves {shown or 'nothing'}; the profile wants {entry.target}"
        elif any(str(entry.name) in conflict for conflict in planned.conflicts):
            status, message = "failed", f"held by a record this environment does not own: {shown}"
        else:
            status, message = "ok", shown
        items.append({"name": str(entry.name), "status": status, "message": message, "observed": {"records": served}})
    wanted_mode = profile.dns.ssl_mode
    mode_status = "ok" if wanted_mode is None or found["ssl_mode"] == wanted_mode else "drift"
    items.append(
        {
            "name": "SSL/TLS mode",
            "status": mode_status,
            "message": f"{found['ssl_mode']}" + ("" if mode_status == "ok" else f"; the profile wants {wanted_mode}"),
            "observed": {"ssl_mode": found["ssl_mode"]},
        }
    )
    origin = profile.dns.origin_certificates
    for certificate in found["origin_certificates"]:
        expires = _expiry(certificate["expires_on"])
        days = (expires - now).days if expires else None
        if days is None:
            status, message = "blocked", f"expiry not readable: {certificate['expires_on']}"
        elif days < 0:
            status, message = "failed", f"expired {certificate['expires_on']}"
        elif origin is not None and days < origin.renew_days:
            status, message = "drift", f"expires in {days} days, inside the renewal window of {origin.renew_days}"
        else:
            status, message = "ok", f"expires {certificate['expires_on']} (in {days} days)"
        items.append(
            {
                "name": f"Origin CA certificate {', '.join(certificate['hostnames'])}",
                "status": status,
                "message": message,
                "observed": certificate,
            }
        )
    return items


def _expiry(text: str) -> datetime.datetime | None:
    for candidate in (text, text.replace(" +0000 UTC", "+00:00"), text.replace("Z", "+00:00")):
        try:
            parsed = datetime.datetime.fromisoformat(candidate)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)
    return None
