"""The DNS records an environment owns in its Cloudflare zone: what the profile wants, what the zone
holds, and the plan between them. Pure functions; the API calls are in roles/edge/cloudflare_api.py."""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field

from gpuaas.profile import Profile

#: Records the environment manages carry this comment; it never touches a record without it.
OWNER_COMMENT = "managed by gpuaas ({environment})"


@dataclass(frozen=True)
class Record:
    """One DNS record as the plan sees it; `id` is the zone's, for live records."""

    name: str
    type: str
    content: str
    proxied: bool
    ttl: int
    comment: str = ""
    id: str = ""

    def key(self) -> tuple[str, str]:
        return self.name, self.type

    def same_as(self, other: Record) -> bool:
        # A proxied record's TTL is always automatic (1) at Cloudflare.
        ttl_matters = not (self.proxied and other.proxied)
        return (self.content, self.proxied) == (other.content, other.proxied) and (
            not ttl_matters or self.ttl == other.ttl
        ) and self.comment == other.comment  # fmt: skip


@dataclass
class Plan:
    create: list[Record] = field(default_factory=list)
    update: list[tuple[Record, Record]] = field(default_factory=list)  # (live, wanted)
    delete: list[Record] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    unchanged: list[Record] = field(default_factory=list)
    owned: int = 0

    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)

    def as_json(self) -> dict:
        return {
            "create": [asdict(r) for r in self.create],
            "update": [{"from": asdict(live), "to": asdict(wanted)} for live, wanted in self.update],
            "delete": [asdict(r) for r in self.delete],
            "conflicts": self.conflicts,
            "unchanged": [r.name + " " + r.type for r in self.unchanged],
        }

    def lines(self) -> list[str]:
        """The plan as an operator reads it."""
        out = [f"+ {r.type} {r.name} -> {_shown(r)}" for r in self.create]
        out += [f"~ {new.type} {new.name}: {_shown(old)} -> {_shown(new)}" for old, new in self.update]
        out += [f"- {r.type} {r.name} ({r.content})" for r in self.delete]
        out += [f"! {c}" for c in self.conflicts]
        return out


def _shown(record: Record) -> str:
    return record.content + (" (proxied)" if record.proxied else "")


def owner_comment(profile: Profile) -> str:
    return OWNER_COMMENT.format(environment=profile.name)


def desired(profile: Profile) -> list[Record]:
    """The profile's records: a host name as target is its address (A or AAAA by its version)."""
    records = []
    for entry in profile.dns.records:
        content, kind = entry.target, entry.type
        if entry.type != "CNAME" and entry.target in {h.name for h in profile.hosts}:
            address = profile.host(entry.target).address
            content = str(address)
            kind = "AAAA" if ipaddress.ip_address(address).version == 6 else "A"
        ttl = 1 if entry.proxied else entry.ttl
        records.append(Record(entry.name, kind, content, entry.proxied, ttl, owner_comment(profile)))
    return records


def _conflicting(wanted: Record, live: Record) -> bool:
    """A live record that stands in the way of `wanted`: the same name and type, or a CNAME beside anything."""
    return live.name == wanted.name and (live.type == wanted.type or "CNAME" in (live.type, wanted.type))


def plan(profile: Profile, live: list[Record]) -> Plan:
    """Create what is missing, update what the environment owns and differs, delete what it owns and
    no longer wants; a desired name held by a record it does not own is a conflict, left alone."""
    marker = owner_comment(profile)
    owned = [r for r in live if r.comment == marker]
    result = Plan(owned=len(owned))
    wanted = desired(profile)
    for record in wanted:
        mine = [r for r in owned if r.key() == record.key()]
        foreign = [r for r in live if r.comment != marker and _conflicting(record, r)]
        if foreign:
            holders = ", ".join(f"{r.type} {r.content}" for r in foreign)
            result.conflicts.append(f"{record.name} is held by a record this environment does not own ({holders})")
        elif mine and mine[0].same_as(record):
            result.unchanged.append(mine[0])
        elif mine:
            result.update.append((mine[0], record))
        else:
            result.create.append(record)
        result.delete += mine[1:]  # duplicates of an owned record
    wanted_keys = {r.key() for r in wanted}
    result.delete += [r for r in owned if r.key() not in wanted_keys]
    return result


def over_limit(result: Plan, max_share: float) -> bool:
    """True when the plan would change or delete more than `max_share` of the owned records."""
    touched = len(result.update) + len(result.delete)
    return result.owned > 0 and touched > max_share * result.owned
