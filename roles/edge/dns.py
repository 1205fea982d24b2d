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
        return (
            canonical(self.type, self.content) == canonical(other.type, other.content)
            and self.proxied == other.proxied
            and (not ttl_matters or self.ttl == other.ttl)
            and self.comment == other.comment
        )


def canonical(kind: str, content: str) -> str:
    """The form Cloudflare stores: an address as the ipaddress module writes it (IPv6 compressed, lower
    case), a DNS name in lower case without the final dot; anything else as it is."""
    if kind in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(content))
        except ValueError:
            return content
    return content.lower().removesuffix(".") if kind == "CNAME" else content


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
        out = [_created(r) for r in self.create]
        out += [_updated(old, new) for old, new in self.update]
        out += [_deleted(r) for r in self.delete]
        out += [f"! {c}" for c in self.conflicts]
        return out


def _shown(record: Record) -> str:
    return record.content + (" (proxied)" if record.proxied else "")


def _created(record: Record) -> str:
    return f"+ {record.type} {record.name} -> {_shown(record)}"


def _updated(old: Record, new: Record) -> str:
    return f"~ {new.type} {new.name}: {_shown(old)} -> {_shown(new)}"


def _deleted(record: Record) -> str:
    return f"- {record.type} {record.name} ({record.content})"


def owner_comment(profile: Profile) -> str:
    return OWNER_COMMENT.format(environment=profile.name)


def desired(profile: Profile) -> list[Record]:
    """The profile's records: a host name as target is its address (A or AAAA by its version); every
    target in the form Cloudflare stores, so that a literal written another way still compares equal."""
    records = []
    for entry in profile.dns.records:
        content, kind = entry.target, entry.type
        if entry.type != "CNAME" and entry.target in {h.name for h in profile.hosts}:
            address = profile.host(entry.target).address
            content = str(address)
            kind = "AAAA" if ipaddress.ip_address(address).version == 6 else "A"
        ttl = 1 if entry.proxied else entry.ttl
        records.append(Record(entry.name, kind, canonical(kind, content), entry.proxied, ttl, owner_comment(profile)))
    return records


def _conflicting(wanted: Record, live: Record) -> bool:
    """A live record that stands in the way of `wanted`: the same name and type, or a CNAME beside a
    record of any type (TXT, MX, ... included: a CNAME cannot share its name)."""
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
            holders = ", ".join(f"{r.type} {_brief(r.content)}" for r in foreign)
            result.conflicts.append(
                f"{record.type} {record.name} is held by a record this environment does not own ({holders}); left alone"
            )
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


def _brief(content: str) -> str:
    return content if len(content) <= 60 else content[:57] + "..."


@dataclass
class Outcome:
    """What of a plan the zone shows, read back after a write whose answer was lost (5xx, time-out)."""

    applied: list[str] = field(default_factory=list)
    not_applied: list[str] = field(default_factory=list)

    def whole(self) -> bool:
        return not self.not_applied

    def none(self) -> bool:
        return not self.applied


def outcome(planned: Plan, live: list[Record]) -> Outcome:
    """Each change of `planned`, as its line of the plan, sorted by whether `live` shows it made: a
    create by a record of its name and type as wanted, an update by the record's id now holding the
    wanted values, a delete by the id being gone."""
    by_id = {r.id: r for r in live}
    result = Outcome()

    def sort(made: bool, line: str) -> None:
        (result.applied if made else result.not_applied).append(line)

    for record in planned.create:
        sort(any(r.key() == record.key() and r.same_as(record) for r in live), _created(record))
    for old, new in planned.update:
        now = by_id.get(old.id)
        sort(now is not None and now.key() == new.key() and now.same_as(new), _updated(old, new))
    for record in planned.delete:
        sort(record.id not in by_id, _deleted(record))
    return result


def over_limit(result: Plan, max_share: float) -> bool:
    """True when the plan would change or delete more than `max_share` of the owned records."""
    touched = len(result.update) + len(result.delete)
    return result.owned > 0 and touched > max_share * result.owned
