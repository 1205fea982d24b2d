"""Backup and restore of roles/redis: an RDB snapshot made by the server (BGSAVE) for the backup; for
the restore, that RDB becomes the data set Redis loads at start, also under append-only persistence
(as the base of a fresh multi-part AOF, which Redis would otherwise load instead)."""

from __future__ import annotations

import re
import shlex

from pyinfra import logger

from gpuaas.backup.service import BackupJob, RestoreJob, RestoreRefused, ServiceHost, differences
from gpuaas.backup.transport import HostCommandError, copy_stream
from gpuaas.profile import Profile
from gpuaas.secrets import Secret, resolve
from roles.redis.config import settings_for

SERVICE = "redis"
DEPENDANTS: tuple[str, ...] = ()
UNIT = "redis-server"
ARTIFACT = "dump.rdb"
#: The AOF base file name Redis 7 gives the first generation of `appendfilename`.
AOF_BASE = "{name}.1.base.rdb"
#: Where a restore or drill stages the RDB, inside Redis' own directory: one file system, so the
#: swap is renames. Also the journal of a swap under way (`swapping`, the old files kept aside).
STAGING = ".gpuaas-restore"
SWAP_UNIT = "gpuaas-redis-swap"
#: What Redis' persistence settings may hold: they reach shell commands on the host.
SAFE_PATH = re.compile(r"/[A-Za-z0-9._+/-]+")
SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")


def applies(profile: Profile) -> bool:
    return True


def password_of(target: ServiceHost) -> Secret:
    return resolve(target.profile, settings_for(target.profile).password)


def cli(target: ServiceHost) -> str:
    """The password arrives as the first line of stdin, never as an argument."""
    port = settings_for(target.profile).port
    return f"read -r REDISCLI_AUTH; export REDISCLI_AUTH; cli='redis-cli --no-auth-warning -p {int(port)}'; "


def _ask(target: ServiceHost, command: str, what: str) -> str:
    return target.shell.run(cli(target) + command, what, secret=password_of(target))


def _info(text: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def _key_counts(keyspace: str) -> dict[str, int]:
    """`INFO keyspace` (`db0:keys=2,expires=0,avg_ttl=0`) as {"db0": 2}."""
    return {
        db: int(dict(part.split("=") for part in value.strip().split(","))["keys"])
        for db, value in _info(keyspace).items()
    }


def figures(target: ServiceHost) -> dict:
    """{"db0": keys, ...}: the key count of every logical database that holds keys."""
    return _key_counts(_ask(target, "$cli info keyspace", "reading the Redis keyspace"))


def _settings(target: ServiceHost) -> dict[str, str]:
    names = "dir dbfilename appendonly appenddirname appendfilename"
    lines = _ask(target, f"$cli config get {names} | tr -d '\\r'", "reading the Redis persistence settings").split()
    found = dict(zip(lines[::2], lines[1::2], strict=False))
    if set(found) != set(names.split()):
        port = settings_for(target.profile).port
        raise HostCommandError(
            f"{target.node.name}: Redis on port {port} did not answer CONFIG GET "
            f"({' '.join(lines)[:200] or 'no answer'}); is redis-server running?"
        )
    unsafe = [
        key
        for key in ("dir", "dbfilename", "appenddirname", "appendfilename")
        if not (SAFE_PATH if key == "dir" else SAFE_NAME).fullmatch(found[key]) or found[key] in (".", "..")
    ]
    if unsafe:
        raise HostCommandError(
            f"{target.node.name}: Redis' {', '.join(unsafe)} is not a plain path (letters, digits, "
            "`.`, `_`, `-`); refused before anything was changed"
        )
    return found


def back_up(job: BackupJob) -> None:
    """BGSAVE, wait until that save (not an earlier one) has finished, then stream the file it wrote.
    The file is opened once: a later save replaces it by rename and cannot change what is read."""
    settings = _settings(job)
    path = shlex.quote(f"{settings['dir']}/{settings['dbfilename']}")
    saves = "$($cli info persistence | tr -d '\\r' | sed -n 's/^rdb_saves://p')"
    command = (
        cli(job) + f"before={saves}; "
        "until $cli bgsave | grep -q 'started'; do sleep 0.2; done; "
        f'while [ "{saves}" = "$before" ]; do sleep 0.1; done; '
        "$cli info persistence | tr -d '\\r' | grep -q '^rdb_last_bgsave_status:ok' || "
        "{ echo 'BGSAVE failed (see the Redis log)' >&2; exit 1; }; "
        f"exec cat {path}"
    )
    version = _info(_ask(job, "$cli info server", "reading the Redis version"))["redis_version"].strip()
    counted = figures(job)
    with job.shell.reader(command, "the Redis RDB snapshot", secret=password_of(job)) as stream:
        job.upload(ARTIFACT, stream)
    job.record(version, counted)


def _refuse_unknown(job: RestoreJob) -> None:
    """The set must hold exactly this role's artifact and figures of logical databases (`db0` ...)."""
    odd = [name for name in job.names if name != ARTIFACT] + [
        str(key) for key in job.figures if not re.fullmatch(r"db[0-9]{1,5}", str(key))
    ]
    if odd or ARTIFACT not in job.names:
        raise RestoreRefused(
            f"{job.node.name}: Redis restore refused (nothing was changed): the set holds "
            f"{', '.join(odd) or f'no {ARTIFACT}'}; this role restores {ARTIFACT} into "
            "databases db0, db1, ..."
        )


def _paths(settings: dict[str, str]) -> dict[str, str]:
    """The shell-quoted paths of a restore (the settings are checked to be plain names)."""
    directory = settings["dir"]
    staging = f"{directory}/{STAGING}"
    return {
        name: shlex.quote(path)
        for name, path in {
            "dir": directory,
            "staging": staging,
            "rdb": f"{directory}/{settings['dbfilename']}",
            "aof": f"{directory}/{settings['appenddirname']}",
            "new": f"{staging}/new.rdb",
        }.items()
    }


def _stop_scratch(staging: str) -> str:
    """A command stopping the scratch server a staging directory's pid file names (if that process
    is still a redis-server: a pid left by a run cut short may have been reused since)."""
    return (
        f"if [ -s {staging}/scratch.pid ]; then pid=$(cat {staging}/scratch.pid); "
        "if grep -q redis-server /proc/$pid/cmdline 2>/dev/null; then kill $pid; fi; fi"
    )


def _clear_staging(settings: dict[str, str]) -> str:
    """A command removing the staging directory and stopping its scratch server, unless a swap's
    journal is there (then the rollback owns it)."""
    staging = _paths(settings)["staging"]
    return f"[ -e {staging}/swapping ] || {{ {_stop_scratch(staging)}; rm -rf {staging}; }}"


def _staged(job: RestoreJob, settings: dict[str, str]) -> dict:
    """The set's RDB written beside the live one (its sha256 checked once it is all read) and loaded into
    a scratch redis-server on a unix socket of the staging directory (no TCP port, no persistence):
    the key counts it holds. The live data is not touched; the staged RDB is kept for the swap."""
    paths = _paths(settings)
    leftover = job.shell.run(
        f"if [ -e {paths['staging']}/swapping ]; then echo swapping; exit 0; fi; "
        f"if [ -e {paths['staging']} ]; then echo leftover; {_clear_staging(settings)}; fi; "
        f"install -d -m 700 -o redis -g redis {paths['staging']}",
        "preparing the Redis staging directory",
    )
    if "swapping" in leftover:
        raise HostCommandError(
            f"{job.node.name}: an unfinished Redis restore waits in {settings['dir']}/{STAGING}; "
            "run the restore again (it puts the live data back first)"
        )
    if "leftover" in leftover:
        logger.warning(f"{job.node.name}: Redis: removed the staged files an earlier restore or drill left")
    with (
        job.open(ARTIFACT) as rdb,
        job.shell.writer(f"umask 077 && cat > {paths['new']}.part", "staging the RDB") as target,
    ):
        copy_stream(rdb, target)
    socket = shlex.quote(f"{settings['dir']}/{STAGING}/scratch.sock")
    cli = f"redis-cli -s {socket}"
    script = (
        f"set -e; cd {paths['staging']}; mv new.rdb.part new.rdb; chown redis:redis new.rdb; "
        f"runuser -u redis -- redis-server --port 0 --unixsocket {socket} --dir {paths['staging']} "
        "--dbfilename new.rdb --appendonly no --save '' --daemonize yes --pidfile scratch.pid "
        "--logfile scratch.log; "
        f"up=no; for i in $(seq 120); do {cli} ping 2>/dev/null | grep -q PONG && up=yes && break; sleep 0.5; done; "
        f"if [ $up = no ]; then {cli} shutdown nosave >/dev/null 2>&1 || true; tail -n 3 scratch.log >&2; exit 1; fi; "
        f"{cli} info keyspace; {cli} shutdown nosave >/dev/null 2>&1 || true; rm -f scratch.pid scratch.log"
    )
    return _key_counts(job.shell.run(script, "loading the staged RDB into a scratch Redis"))


def _rollback_script(settings: dict[str, str]) -> str:
    """Put back the live files an unfinished swap moved aside, stop a scratch server a run cut short
    left, and remove the staging directory; prints what it put back (nothing when no swap was under
    way)."""
    paths = _paths(settings)
    staging = paths["staging"]
    return (
        f"{_stop_scratch(staging)}; if [ -e {staging}/swapping ]; then systemctl stop {UNIT}; "
        f"if [ -d {staging}/old-aof ]; then rm -rf {paths['aof']}; mv {staging}/old-aof {paths['aof']}; "
        f"echo 'put back the append-only files'; elif [ -e {staging}/no-old-aof ]; then rm -rf {paths['aof']}; "
        "echo 'removed the restored append-only files'; fi; "
        f"if [ -e {staging}/old.rdb ]; then if [ {staging}/old.rdb -ef {paths['rdb']} ]; then "
        f"rm -f {staging}/old.rdb; else mv {staging}/old.rdb {paths['rdb']}; fi; echo 'put back the RDB'; fi; "
        f"if [ -e {staging}/no-old.rdb ]; then rm -f {paths['rdb']}; echo 'removed the restored RDB'; fi; "
        f"rm -rf {staging}; systemctl start {UNIT}; fi; rm -rf {staging}"
    )


def _swap_script(settings: dict[str, str]) -> str:
    """With Redis stopped: the live RDB (and AOF directory) kept aside, the staged ones renamed into
    place, Redis started. Any failure puts the live files back before it ends."""
    paths = _paths(settings)
    staging = paths["staging"]
    steps = [f"touch {staging}/swapping", f"systemctl stop {UNIT}"]
    if settings["appendonly"] == "yes":
        # Redis loads the AOF instead of the RDB: a fresh multi-part AOF whose base is the staged RDB.
        base = AOF_BASE.format(name=settings["appendfilename"])
        manifest = shlex.quote(settings["appendfilename"] + ".manifest")
        steps += [
            f"install -d -m 750 -o redis -g redis {staging}/new-aof",
            f"cp {paths['new']} {staging}/new-aof/{shlex.quote(base)}",
            f"printf 'file %s seq 1 type b\\n' {shlex.quote(base)} > {staging}/new-aof/{manifest}",
            f"chown -R redis:redis {staging}/new-aof",
            f"if [ -d {paths['aof']} ]; then mv {paths['aof']} {staging}/old-aof; else touch {staging}/no-old-aof; fi",
            f"mv {staging}/new-aof {paths['aof']}",
        ]
    steps += [
        # Without a live RDB to keep, the journal says so: a rollback then removes the restored one.
        f"if [ -e {paths['rdb']} ]; then ln -f {paths['rdb']} {staging}/old.rdb; else touch {staging}/no-old.rdb; fi",
        f"mv {paths['new']} {paths['rdb']}",
        f"systemctl start {UNIT}",
    ]
    rollback = shlex.quote("set +e; " + _rollback_script(settings))
    return f"trap {rollback} EXIT; set -e; " + "; ".join(steps) + "; trap - EXIT"


def _wait_ready(job: RestoreJob) -> None:
    # Loading a large data set takes a while; PING answers LOADING until it is done.
    _ask(
        job,
        "for i in $(seq 120); do $cli ping 2>/dev/null | grep -q PONG && exit 0; sleep 0.5; done; exit 1",
        "waiting for Redis to load its data set",
    )


def restore(job: RestoreJob) -> dict:
    """The RDB staged beside the live one and proven in a scratch Redis (sha256, key counts), then
    swapped in by renames with Redis stopped (under appendonly as the base of a fresh AOF); the
    live files are kept aside until Redis shows the manifest's key counts, and put back otherwise.
    What an earlier run cut short is rolled back first. The key counts found."""
    _refuse_unknown(job)
    settings = _settings(job)
    rolled_back = job.shell.run_detached(
        SWAP_UNIT, _rollback_script(settings), "rolling back an unfinished Redis restore"
    )
    if rolled_back.strip():
        logger.warning(
            f"{job.node.name}: Redis: an unfinished restore was rolled back "
            f"({'; '.join(rolled_back.strip().splitlines())})"
        )
    try:
        wrong = differences(job.figures, _staged(job, settings))
        if wrong:
            raise RestoreRefused(
                f"{job.node.name}: the staged Redis RDB differs from the manifest "
                f"({'; '.join(wrong)}); the live data was not touched"
            )
        try:
            job.shell.run_detached(SWAP_UNIT, _swap_script(settings), "swapping in the restored Redis data set")
            _wait_ready(job)
            found = figures(job)
            wrong = differences(job.figures, found)
            if wrong:
                raise HostCommandError(
                    f"{job.node.name}: after the swap Redis showed other key counts than the "
                    f"manifest ({'; '.join(wrong)}); the live data was put back"
                )
        except Exception:
            job.shell.run_detached(SWAP_UNIT, _rollback_script(settings), "putting the live Redis data back")
            _wait_ready(job)
            raise
        # Proven: the commit is one removal (the journal), then the old files go.
        staging = _paths(settings)["staging"]
        job.shell.run(f"rm -f {staging}/swapping && rm -rf {staging}", "removing the Redis data the restore replaced")
        return found
    finally:
        job.shell.run(_clear_staging(settings), "removing the Redis staging directory")


def drill(job: RestoreJob) -> dict:
    """The RDB staged where a restore stages it and loaded into a scratch redis-server (a unix socket,
    no TCP port, no persistence): its key counts. The live Redis is not touched; the staged files are
    removed afterwards."""
    _refuse_unknown(job)
    settings = _settings(job)
    try:
        return _staged(job, settings)
    finally:
        job.shell.run(_clear_staging(settings), "removing the Redis staging directory")
