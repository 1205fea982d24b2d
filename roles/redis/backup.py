"""Backup and restore of roles/redis: an RDB snapshot made by the server (BGSAVE) for the backup; for
the restore, that RDB becomes the data set Redis loads at start, also under append-only persistence
(as the base of a fresh multi-part AOF, which Redis would otherwise load instead)."""

from __future__ import annotations

import shlex

from gpuaas.backup.service import BackupJob, RestoreJob, ServiceHost
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


def applies(profile: Profile) -> bool:
    return True


def _password(target: ServiceHost) -> Secret:
    return resolve(target.profile, settings_for(target.profile).password)


def _cli(target: ServiceHost) -> str:
    """The password arrives as the first line of stdin, never as an argument."""
    port = settings_for(target.profile).port
    return f"read -r REDISCLI_AUTH; export REDISCLI_AUTH; cli='redis-cli --no-auth-warning -p {int(port)}'; "


def _ask(target: ServiceHost, command: str, what: str) -> str:
    return target.shell.run(_cli(target) + command, what, secret=_password(target))


def _info(text: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def _key_counts(keyspace: str) -> dict[str, int]:
    """`INFO keyspace` (`db0:keys=2,expires=0,avg_ttl=0`) as {"db0": 2}."""
    return {db: int(dict(part.split("=") for part in value.strip().split(","))["keys"])
            for db, value in _info(keyspace).items()}  # fmt: skip


def figures(target: ServiceHost) -> dict:
    """{"db0": keys, ...}: the key count of every logical database that holds keys."""
    return _key_counts(_ask(target, "$cli info keyspace", "reading the Redis keyspace"))


def _settings(target: ServiceHost) -> dict[str, str]:
    names = "dir dbfilename appendonly appenddirname appendfilename"
    lines = _ask(target, f"$cli config get {names} | tr -d '\\r'", "reading the Redis persistence settings").split()
    found = dict(zip(lines[::2], lines[1::2], strict=False))
    if set(found) != set(names.split()):
        port = settings_for(target.profile).port
        raise HostCommandError(f"{target.node.name}: Redis on port {port} did not answer CONFIG GET "
                               f"({' '.join(lines)[:200] or 'no answer'}); is redis-server running?")  # fmt: skip
    return found


def back_up(job: BackupJob) -> None:
    """BGSAVE, wait until that save (not an earlier one) has finished, then stream the file it wrote.
    The file is opened once: a later save replaces it by rename and cannot change what is read."""
    settings = _settings(job)
    path = shlex.quote(f"{settings['dir']}/{settings['dbfilename']}")
    saves = "$($cli info persistence | tr -d '\\r' | sed -n 's/^rdb_saves://p')"
    command = (
        _cli(job) + f"before={saves}; "
        "until $cli bgsave | grep -q 'started'; do sleep 0.2; done; "
        f'while [ "{saves}" = "$before" ]; do sleep 0.1; done; '
        "$cli info persistence | tr -d '\\r' | grep -q '^rdb_last_bgsave_status:ok' || "
        "{ echo 'BGSAVE failed (see the Redis log)' >&2; exit 1; }; "
        f"exec cat {path}"
    )
    version = _info(_ask(job, "$cli info server", "reading the Redis version"))["redis_version"].strip()
    counted = figures(job)
    with job.shell.reader(command, "the Redis RDB snapshot", secret=_password(job)) as stream:
        job.upload(ARTIFACT, stream)
    job.record(version, counted)


def restore(job: RestoreJob) -> None:
    """Stop Redis, install the RDB (and, with appendonly, a new AOF whose base is that RDB), start it."""
    settings = _settings(job)
    directory = settings["dir"]
    staged = shlex.quote(f"{directory}/.restore.rdb")
    with job.open(ARTIFACT) as rdb, job.shell.writer(f"umask 007 && cat > {staged}", "staging the RDB") as target:
        copy_stream(rdb, target)
    steps = [f"systemctl stop {UNIT}", f"cd {shlex.quote(directory)}"]
    if settings["appendonly"] == "yes":
        aof_dir, base = settings["appenddirname"], AOF_BASE.format(name=settings["appendfilename"])
        steps += [
            f"rm -rf {shlex.quote(aof_dir)}",
            f"install -d -m 750 -o redis -g redis {shlex.quote(aof_dir)}",
            f"cp {staged} {shlex.quote(aof_dir + '/' + base)}",
            f"printf 'file %s seq 1 type b\\n' {shlex.quote(base)} > {shlex.quote(aof_dir)}/"
            f"{shlex.quote(settings['appendfilename'] + '.manifest')}",
            f"chown -R redis:redis {shlex.quote(aof_dir)}",
        ]
    steps += [
        f"chown redis:redis {staged} && mv {staged} {shlex.quote(settings['dbfilename'])}",
        f"systemctl start {UNIT}",
        # Loading a large data set takes a while; PING answers LOADING until it is done.
        "for i in $(seq 120); do $cli ping 2>/dev/null | grep -q PONG && exit 0; sleep 0.5; done; exit 1",
    ]
    _ask(job, " && ".join(steps), "restoring the Redis data set")


def drill(job: RestoreJob) -> dict:
    """Load the RDB into a scratch redis-server (a unix socket in a directory of its own, no TCP
    port, no persistence), count its keys, stop it."""
    scratch = "/var/tmp/gpuaas-redis-drill"
    socket = f"{scratch}/redis.sock"
    with job.open(ARTIFACT) as rdb, job.shell.writer(
        f"rm -rf {scratch} && install -d -m 700 -o redis -g redis {scratch} && cat > {scratch}/dump.rdb",
        "staging the RDB for the drill",
    ) as target:  # fmt: skip
        copy_stream(rdb, target)
    cli = f"redis-cli -s {socket}"
    script = (
        f"chown redis:redis {scratch}/dump.rdb && "
        f"runuser -u redis -- redis-server --port 0 --unixsocket {socket} --dir {scratch} --dbfilename dump.rdb "
        f"--appendonly no --save '' --daemonize yes --pidfile {scratch}/redis.pid --logfile {scratch}/redis.log && "
        f"for i in $(seq 120); do {cli} ping 2>/dev/null | grep -q PONG && break; sleep 0.5; done; "
        f"{cli} info keyspace; {cli} shutdown nosave >/dev/null 2>&1; rm -rf {scratch}"
    )
    return _key_counts(job.shell.run(script, "loading the RDB into a scratch Redis"))
