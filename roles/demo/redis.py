"""The demo baseline's Redis part: every key of database 0 read in one server-side script (type, value,
time to live) and written back in one MULTI/EXEC transaction after a FLUSHALL, through `redis-cli --pipe`:
other clients see the old keys or the baseline's, never a half-written state, and Redis keeps running."""

from __future__ import annotations

import hashlib
import json

from gpuaas.backup.service import ServiceHost
from gpuaas.backup.transport import HostCommandError
from roles.demo.baseline import RedisKey
from roles.redis.backup import cli, password_of

#: Every key of the current database as a JSON list of [key, type, value, pttl]; hashes and sorted sets as
#: flat [field, value, ...] lists, in Redis's order (the checksum sorts what has no order of its own).
EXPORT = """
local found, cursor = {}, "0"
repeat
  local page = redis.call('SCAN', cursor, 'COUNT', 1000)
  cursor = page[1]
  for _, key in ipairs(page[2]) do
    local kind = redis.call('TYPE', key)['ok']
    local value
    if kind == 'string' then value = redis.call('GET', key)
    elseif kind == 'hash' then value = redis.call('HGETALL', key)
    elseif kind == 'set' then value = redis.call('SMEMBERS', key)
    elseif kind == 'list' then value = redis.call('LRANGE', key, 0, -1)
    elseif kind == 'zset' then value = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    else value = '' end
    table.insert(found, {key, kind, value, redis.call('PTTL', key)})
  end
until cursor == "0"
return cjson.encode(found)
"""


def _pairs(flat: list) -> dict:
    return dict(zip(flat[0::2], flat[1::2], strict=True))


def read_keys(target: ServiceHost) -> list[dict]:
    """[{key, type, value, ttl_ms}] of database 0, sorted by key (values never printed)."""
    text = target.shell.run(
        cli(target) + '$cli --raw eval "$(cat)" 0',
        "reading Redis's keys",
        secret=password_of(target),
        input=EXPORT.encode(),
    )
    keys = []
    for key, kind, value, ttl in json.loads(text or "[]"):
        if kind == "hash":
            value = _pairs(value) if isinstance(value, list) else {}
        elif kind == "zset":
            value = {member: float(score) for member, score in _pairs(value).items()} if value else {}
        elif kind in ("set", "list") and not isinstance(value, list):
            value = []
        keys.append({"key": key, "type": kind, "value": value, "ttl_ms": int(ttl)})
    return sorted(keys, key=lambda entry: entry["key"])


def checksums(keys: list[dict]) -> dict[str, str]:
    """{key: "TYPE SHA256"} of each key's content (its time to live left out: it runs down)."""
    found = {}
    for entry in keys:
        value = entry["value"]
        if entry["type"] == "set":
            value = sorted(value)
        canonical = json.dumps([entry["type"], value], sort_keys=True, separators=(",", ":"))
        found[entry["key"]] = f"{entry['type']} {hashlib.sha256(canonical.encode()).hexdigest()}"
    return found


def from_baseline(keys: list[RedisKey]) -> list[dict]:
    return [{"key": k.key, "type": k.type, "value": k.value, "ttl_ms": -1} for k in keys]


def _resp(*arguments: str | bytes) -> bytes:
    """One command in Redis's protocol (what `redis-cli --pipe` sends as is: binary safe, no quoting)."""
    parts = [f"*{len(arguments)}\r\n".encode()]
    for argument in arguments:
        data = argument if isinstance(argument, bytes) else str(argument).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _commands(entry: dict) -> list[bytes]:
    key, kind, value = entry["key"], entry["type"], entry["value"]
    if kind == "string":
        commands = [_resp("SET", key, value)]
    elif kind == "hash":
        commands = [_resp("HSET", key, *[part for pair in sorted(value.items()) for part in pair])] if value else []
    elif kind == "set":
        commands = [_resp("SADD", key, *value)] if value else []
    elif kind == "list":
        commands = [_resp("RPUSH", key, *value)] if value else []
    elif kind == "zset":
        pairs = [part for member, score in value.items() for part in (repr(float(score)), member)]
        commands = [_resp("ZADD", key, *pairs)] if value else []
    else:
        raise HostCommandError(f"Redis key {key}: type {kind} is not one a baseline keeps")
    if entry.get("ttl_ms", -1) > 0 and commands:
        commands.append(_resp("PEXPIRE", key, str(entry["ttl_ms"])))
    return commands


def write_keys(target: ServiceHost, keys: list[dict]) -> None:
    """Every database flushed and `keys` written into database 0, in one transaction."""
    body = [_resp("MULTI"), _resp("FLUSHALL")]
    for entry in keys:
        body += _commands(entry)
    body.append(_resp("EXEC"))
    answer = target.shell.run(
        cli(target) + "exec $cli --pipe", "writing Redis's keys", secret=password_of(target), input=b"".join(body)
    )
    if "errors: 0," not in answer:
        summary = answer.strip().splitlines()[-1:] or ["no summary"]
        raise HostCommandError(f"{target.node.name}: Redis refused the baseline's keys ({summary[0]})")
