"""Cloudflare's API through the official SDK: the zone, its records, the batch that applies a plan,
the SSL mode. Every SDK error becomes an EdgeError that says what failed, never showing the token."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import cloudflare
from cloudflare import Cloudflare
from pyinfra.api.exceptions import DeployError

from gpuaas.profile import Profile
from gpuaas.secrets import resolve
from roles.edge.dns import Plan, Record

MANAGED_TYPES = ("A", "AAAA", "CNAME")


class EdgeError(DeployError):
    """Cloudflare refused or failed a request; the message says which and why."""


@contextmanager
def api_errors(profile: Profile, doing: str) -> Iterator[None]:
    """Turn the SDK's errors into one clear message naming the zone and the step."""
    where = f"Cloudflare, zone {profile.dns.zone}, {doing}"
    try:
        yield
    except cloudflare.AuthenticationError:
        raise EdgeError(f"{where}: the API token was refused (401); check the secret {profile.dns.api_token}") from None
    except cloudflare.PermissionDeniedError:
        raise EdgeError(f"{where}: the API token lacks the permission for this (403)") from None
    except cloudflare.RateLimitError:
        raise EdgeError(f"{where}: still rate limited (429) after retrying as Retry-After asked") from None
    except cloudflare.InternalServerError as error:
        raise EdgeError(f"{where}: Cloudflare failed ({error.status_code}) after retries") from None
    except cloudflare.APITimeoutError:
        raise EdgeError(f"{where}: timed out") from None
    except cloudflare.APIConnectionError:
        raise EdgeError(f"{where}: cannot reach the API") from None
    except cloudflare.APIStatusError as error:
        codes = ", ".join(f"{e.get('code')} {e.get('message')}" for e in (error.body or {}).get("errors", []))
        raise EdgeError(f"{where}: refused ({error.status_code}: {codes or 'no detail'})") from None


def client(profile: Profile) -> Cloudflare:
    """The SDK with the profile's token (CLOUDFLARE_BASE_URL, when set, points it elsewhere)."""
    return Cloudflare(api_token=resolve(profile, profile.dns.api_token).reveal(), max_retries=3, timeout=30.0)


def zone_id(api: Cloudflare, profile: Profile) -> str:
    with api_errors(profile, "looking up the zone"):
        zones = [zone for zone in api.zones.list(name=profile.dns.zone) if zone.name == profile.dns.zone]
    if not zones:
        raise EdgeError(f"Cloudflare: zone {profile.dns.zone} is not visible to the API token")
    return zones[0].id


def live_records(api: Cloudflare, profile: Profile, zone: str) -> list[Record]:
    """The zone's A, AAAA and CNAME records (every page)."""
    with api_errors(profile, "listing the DNS records"):
        return [Record(r.name, r.type, r.content, bool(r.proxied), int(r.ttl), r.comment or "", r.id)
                for r in api.dns.records.list(zone_id=zone, per_page=100) if r.type in MANAGED_TYPES]  # fmt: skip


def _fields(record: Record) -> dict:
    return {"name": record.name, "type": record.type, "content": record.content, "proxied": record.proxied,
            "ttl": record.ttl, "comment": record.comment}  # fmt: skip


def apply(api: Cloudflare, profile: Profile, zone: str, planned: Plan) -> None:
    """One batch: Cloudflare applies it whole or not at all, so a failure leaves nothing half done."""
    with api_errors(profile, f"applying {len(planned.create)} creates, {len(planned.update)} updates and "
                             f"{len(planned.delete)} deletes in one batch (none was applied)"):  # fmt: skip
        api.dns.records.batch(
            zone_id=zone,
            deletes=[{"id": record.id} for record in planned.delete],
            patches=[{"id": live.id, **_fields(wanted)} for live, wanted in planned.update],
            posts=[_fields(record) for record in planned.create],
        )


def ssl_mode(api: Cloudflare, profile: Profile, zone: str) -> str:
    with api_errors(profile, "reading the SSL/TLS mode"):
        return str(api.zones.settings.get("ssl", zone_id=zone).value)


def set_ssl_mode(api: Cloudflare, profile: Profile, zone: str, mode: str) -> None:
    with api_errors(profile, f"setting the SSL/TLS mode to {mode}"):
        api.zones.settings.edit("ssl", zone_id=zone, value=mode)
