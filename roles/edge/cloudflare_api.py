"""Cloudflare's API through the official SDK: the zone, its records, the batch that applies a plan,
the SSL mode. Every SDK error becomes an EdgeError that says what failed, never showing the token.

Reads are retried by the SDK (time-outs, 429 as Retry-After asks, 5xx). Writes never are: a write
whose answer is lost (a 5xx or a time-out) may have been applied, so the zone is read back and the
outcome reported as it is instead of sending the write again."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import cloudflare
from cloudflare import Cloudflare
from pyinfra.api.exceptions import DeployError

from gpuaas.errors import SecretError
from gpuaas.profile import Profile
from gpuaas.secrets import resolve
from roles.edge.dns import Plan, Record, outcome

#: Cloudflare's code for a token it does not accept ("Invalid access token", or one used from an
#: address it is not allowed from). Any other 403 (10000 "Authentication error") is a token that is
#: valid but lacks the permission.
INVALID_TOKEN_CODE = 9109
#: How often the SDK retries a read (time-outs, 429 as Retry-After asks, 5xx).
READ_RETRIES = 3

T = TypeVar("T")


class EdgeError(DeployError):
    """Cloudflare refused or failed a request; the message says which and why."""


class UnknownOutcome(Exception):
    """A write whose answer was lost (5xx, time-out, dropped connection): it may have been applied."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _codes(error: cloudflare.APIStatusError) -> list[tuple[object, str]]:
    body = error.body if isinstance(error.body, dict) else {}
    return [(e.get("code"), str(e.get("message", ""))) for e in body.get("errors") or [] if isinstance(e, dict)]


def _detail(error: cloudflare.APIStatusError) -> str:
    codes = ", ".join(f"{code} {message}" for code, message in _codes(error))
    return f"{error.status_code}: {codes or 'no detail'}"


def _reason(profile: Profile, error: cloudflare.APIError) -> str:
    """Why a request failed, in words; the token is named by its secret reference only."""
    token = f"the API token (dns.api_token, {profile.dns.api_token})"
    if isinstance(error, cloudflare.AuthenticationError) or (
        isinstance(error, cloudflare.PermissionDeniedError)
        and any(code == INVALID_TOKEN_CODE for code, _ in _codes(error))
    ):
        return (
            f"Cloudflare does not accept {token} ({_detail(error)}): it is wrong, expired, revoked or not "
            "allowed from this address; nothing was changed"
        )
    if isinstance(error, cloudflare.PermissionDeniedError):
        return (
            f"{token} is valid but lacks the permission for this ({_detail(error)}); it needs Zone DNS Edit, "
            "Zone Settings Edit and SSL and Certificates Edit on the zone"
        )
    if isinstance(error, cloudflare.RateLimitError):
        return "still rate limited (429) after retrying as Retry-After asked"
    if isinstance(error, cloudflare.InternalServerError):
        return f"Cloudflare failed ({error.status_code}) after retries"
    if isinstance(error, cloudflare.APITimeoutError):
        return "timed out"
    if isinstance(error, cloudflare.APIStatusError):
        return f"refused ({_detail(error)})"
    return "cannot reach the API"


def _lost(error: cloudflare.APIError) -> str | None:
    """Why the answer to a write was lost (it may have been applied), or None when it was not."""
    if isinstance(error, cloudflare.InternalServerError):
        return f"Cloudflare failed ({error.status_code})"
    if isinstance(error, cloudflare.APITimeoutError):
        return "the request timed out"
    if isinstance(error, cloudflare.APIConnectionError):
        return "the connection failed before an answer came"
    return None


@contextmanager
def api_errors(profile: Profile, doing: str, write: bool = False) -> Iterator[None]:
    """Turn the SDK's errors into one clear message naming the zone, the step and the token's secret
    reference (never its value). With `write`, a lost answer raises UnknownOutcome for the caller to
    read the zone back; a refusal says that nothing of the write was applied."""
    try:
        yield
    except cloudflare.APIError as error:
        lost = _lost(error) if write else None
        if lost:
            raise UnknownOutcome(lost) from None
        # Cloudflare checks a write before making it: a refusal applied nothing.
        token_refused = isinstance(error, (cloudflare.AuthenticationError, cloudflare.PermissionDeniedError))
        refused = "; none of it was applied" if write and isinstance(error, cloudflare.APIStatusError) else ""
        refused = "" if token_refused else refused
        raise EdgeError(f"Cloudflare, zone {profile.dns.zone}, {doing}: {_reason(profile, error)}{refused}") from None


def client(profile: Profile, timeout: float = 30.0) -> Cloudflare:
    """The SDK with the profile's token (CLOUDFLARE_BASE_URL, when set, points it elsewhere). A token
    that cannot be read stops here, before any request, naming its secret reference."""
    try:
        token = resolve(profile, profile.dns.api_token)
    except SecretError as error:
        raise EdgeError(
            f"Cloudflare, zone {profile.dns.zone}: the API token (dns.api_token, {profile.dns.api_token}) cannot "
            f"be read: {error}; nothing was sent to Cloudflare"
        ) from None
    return Cloudflare(api_token=token.reveal(), max_retries=READ_RETRIES, timeout=timeout)


def writer(api: Cloudflare) -> Cloudflare:
    """The same client without the SDK's retries: a write is sent once."""
    return api.with_options(max_retries=0)


def send_once(profile: Profile, doing: str, write: Callable[[], T]) -> T:
    """Send a write once. Only a 429 is sent again, after Retry-After: Cloudflare refused it unread, so
    it was not applied. A lost answer raises UnknownOutcome."""
    with api_errors(profile, doing, write=True):
        for attempt in itertools.count():
            try:
                return write()
            except cloudflare.RateLimitError as error:
                if attempt >= READ_RETRIES:
                    raise
                time.sleep(min(float(error.response.headers.get("retry-after") or 1), 60.0))


def zone_id(api: Cloudflare, profile: Profile) -> str:
    with api_errors(profile, "looking up the zone"):
        zones = [zone for zone in api.zones.list(name=profile.dns.zone) if zone.name == profile.dns.zone]
    if not zones:
        raise EdgeError(f"Cloudflare: zone {profile.dns.zone} is not visible to the API token")
    return zones[0].id


def live_records(api: Cloudflare, profile: Profile, zone: str) -> list[Record]:
    """Every record of the zone, of every type (every page): a CNAME cannot share its name with a TXT
    or an MX record either, so all of them count for conflicts."""
    with api_errors(profile, "listing the DNS records"):
        return [
            Record(
                r.name,
                r.type,
                str(r.content or ""),
                bool(getattr(r, "proxied", False)),
                int(r.ttl or 1),
                r.comment or "",
                r.id,
            )
            for r in api.dns.records.list(zone_id=zone, per_page=100)
        ]


def _fields(record: Record) -> dict:
    return {
        "name": record.name,
        "type": record.type,
        "content": record.content,
        "proxied": record.proxied,
        "ttl": record.ttl,
        "comment": record.comment,
    }


def apply(api: Cloudflare, profile: Profile, zone: str, planned: Plan) -> str | None:
    """One batch, sent once: Cloudflare applies it whole or not at all. When its answer is lost, the
    zone is read back: the whole batch applied is a note (returned) and the run carries on; none or part
    of it applied stops the run, saying which record is which."""
    doing = (
        f"applying {len(planned.create)} creates, {len(planned.update)} updates and "
        f"{len(planned.delete)} deletes in one batch"
    )
    try:
        send_once(
            profile,
            doing,
            lambda: writer(api).dns.records.batch(
                zone_id=zone,
                deletes=[{"id": record.id} for record in planned.delete],
                patches=[{"id": live.id, **_fields(wanted)} for live, wanted in planned.update],
                posts=[_fields(record) for record in planned.create],
            ),
        )
    except UnknownOutcome as lost:
        return _read_back(api, profile, zone, planned, f"Cloudflare, zone {profile.dns.zone}, {doing}: {lost.reason}")
    return None


def _read_back(api: Cloudflare, profile: Profile, zone: str, planned: Plan, where: str) -> str:
    """The batch's outcome as the zone shows it: a note when it is all there, else an EdgeError."""
    try:
        shown = outcome(planned, live_records(api, profile, zone))
    except EdgeError as error:
        raise EdgeError(
            f"{where}, and reading the zone back failed too ({error}); whether the batch was applied "
            "is unknown: look at the zone before running again"
        ) from None
    if shown.whole():
        return f"{where}, but reading the zone back shows the whole batch applied ({len(shown.applied)} changes)"
    if shown.none():
        raise EdgeError(
            f"{where}; reading the zone back shows it was not applied (not applied: "
            f"{'; '.join(shown.not_applied)}); a new run plans it again"
        )
    raise EdgeError(
        f"{where}; reading the zone back shows it partly applied (applied: {'; '.join(shown.applied)}; "
        f"not applied: {'; '.join(shown.not_applied)}); a new run plans the rest"
    )


def ssl_mode(api: Cloudflare, profile: Profile, zone: str) -> str:
    with api_errors(profile, "reading the SSL/TLS mode"):
        return str(api.zones.settings.get("ssl", zone_id=zone).value)


def set_ssl_mode(api: Cloudflare, profile: Profile, zone: str, mode: str) -> str | None:
    """Set the mode, sent once; when the answer is lost, the mode read back says whether it was set."""
    doing = f"setting the SSL/TLS mode to {mode}"
    try:
        send_once(profile, doing, lambda: writer(api).zones.settings.edit("ssl", zone_id=zone, value=mode))
    except UnknownOutcome as lost:
        where = f"Cloudflare, zone {profile.dns.zone}, {doing}: {lost.reason}"
        now = ssl_mode(api, profile, zone)
        if now != mode:
            raise EdgeError(f"{where}; the zone read back is still {now}: not applied") from None
        return f"{where}, but the zone read back shows {mode}: applied"
    return None
