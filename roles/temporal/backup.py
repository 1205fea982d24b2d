"""Backup and restore of roles/temporal in dev mode: the SQLite file, copied consistently with
SQLite's online backup (python3's sqlite3 on the host) while Temporal runs. In server mode Temporal
keeps its state in PostgreSQL, which roles/postgres backs up and restores.

A restore writes the set's file beside the live one (`FILE.restoring`) and checks it (its stream's
sha256, SQLite's quick_check, its row counts against the set's) while Temporal still runs on the live
file. Only then is Temporal stopped, the live file kept as `FILE.previous` (a hard link) and the new
one renamed over it in one step; the previous file goes once Temporal runs again. A run stopped
anywhere before leaves the live file as it was; what it left beside it goes, with a warning, at the
next restore. The restore drill stages the same way (`FILE.drill`) and removes its copy."""

from __future__ import annotations

import json
import shlex

from pyinfra import logger

from gpuaas.backup.service import BackupJob, RestoreJob, RestoreRefused, ServiceHost, differences
from gpuaas.backup.transport import HostCommandError, copy_stream
from gpuaas.profile import Profile
from roles.temporal.config import settings_for

SERVICE = "temporal"
DEPENDANTS: tuple[str, ...] = ()
UNIT = "temporal"
ARTIFACT = "temporal.db"
#: Tables that change only with the platform's work (the server rewrites others, such as task
#: queues and membership, on its own as soon as it starts).
COUNTED = ("namespaces", "executions", "current_executions", "history_tree", "history_node")
#: Suffixes of the files kept beside the live SQLite file while it is restored or drilled.
STAGING, PREVIOUS, DRILL = ".restoring", ".previous", ".drill"
#: What SQLite keeps beside a database file (write-ahead log, its index, a rollback journal).
SIDECARS = ("-wal", "-shm", "-journal")

_COUNT = """
import json, sqlite3, sys
tables = sys.argv[2].split(",")
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
present = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
print(json.dumps({t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables if t in present}))
"""
_COPY = """
import sqlite3, sys
source = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
target = sqlite3.connect(sys.argv[2])
source.backup(target)
target.close()
"""
_CHECK = """
import sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
problems = [row[0] for row in db.execute("PRAGMA quick_check")]
sys.exit(None if problems == ["ok"] else "; ".join(problems[:5]))
"""
#: Reading the file settles a crashed transaction's journal; the checkpoint empties the write-ahead log
#: into it, so that no log of the old file is ever applied to the new one.
_SETTLE = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("SELECT count(*) FROM sqlite_master").fetchone()
busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
db.close()
sys.exit(busy)
"""


def applies(profile: Profile) -> bool:
    settings = settings_for(profile)
    return settings.enabled and settings.mode == "dev"


def _python(script: str, *arguments: str) -> str:
    return f"python3 -c {shlex.quote(script)} {' '.join(shlex.quote(a) for a in arguments)}"


def figures(target: ServiceHost) -> dict:
    """{table: rows} of the tables that hold namespaces, workflow executions and their histories."""
    path = settings_for(target.profile).db_file
    return json.loads(target.shell.run(_python(_COUNT, path, ",".join(COUNTED)), "counting Temporal's rows"))


def back_up(job: BackupJob) -> None:
    path = settings_for(job.profile).db_file
    copy = shlex.quote(path + ".backup")
    job.shell.run(f"umask 077 && {_python(_COPY, path, path + '.backup')}", "copying Temporal's SQLite file")
    counted = json.loads(job.shell.run(_python(_COUNT, path + ".backup", ",".join(COUNTED)), "counting rows"))
    try:
        with job.shell.reader(f"cat {copy}", "reading the copy of Temporal's SQLite file") as stream:
            job.upload(ARTIFACT, stream)
    finally:
        job.shell.run(f"rm -f {copy}", "removing the copy")
    version = job.shell.run("temporal --version | head -1", "reading the Temporal version").split()[2]
    job.record(version, counted)


def _files(path: str) -> str:
    """`path` and its SQLite sidecars, quoted for the shell."""
    return " ".join(shlex.quote(path + end) for end in ("", *SIDECARS))


def _remove(target: ServiceHost, path: str) -> None:
    target.shell.run(f"rm -f {_files(path)}", f"removing {path}")


def _remove_quietly(target: ServiceHost, path: str) -> None:
    """Remove a copy on the way out of a failed run; one that cannot be removed now is the next run's to clear."""
    try:
        _remove(target, path)
    except HostCommandError:
        pass


def _clear_leftovers(target: ServiceHost, suffixes: tuple[str, ...]) -> None:
    """Remove the copies a run that was stopped left beside the live file, each with a warning. A
    `.previous` file goes only while the live file exists: then its swap happened and the live file holds
    the restored data; without it, it is the only copy and the restore stops naming it."""
    path = settings_for(target.profile).db_file
    listing = " ".join(shlex.quote(path + suffix) for suffix in ("", *suffixes))
    found = set(
        target.shell.run(
            f'for file in {listing}; do if [ -e "$file" ]; then echo "$file"; fi; done',
            "looking for copies beside Temporal's SQLite file",
        ).splitlines()
    )
    if PREVIOUS in suffixes and path + PREVIOUS in found and path not in found:
        raise RestoreRefused(
            f"{target.node.name}: temporal: {path + PREVIOUS} is there but {path} is not; it may "
            f"be the only copy of Temporal's data, so nothing was restored (move it back to {path}, "
            "or remove it, then restore again)"
        )
    for copy in (path + suffix for suffix in suffixes if path + suffix in found):
        _remove(target, copy)
        logger.warning(
            f"{target.node.name}: temporal: removed {copy}, left beside {path} by an earlier restore or "
            "drill that did not finish"
        )


def stage(job: RestoreJob, copy: str) -> dict:
    """Write the set's SQLite file to `copy` (readable by root only), check it with SQLite's quick_check
    and count its rows. The stream is closed, and so checked against the manifest's sha256, first."""
    with (
        job.open(ARTIFACT) as db,
        job.shell.writer(f"umask 077 && cat > {shlex.quote(copy)}", f"writing {copy}") as out,
    ):
        copy_stream(db, out)
    job.shell.run(_python(_CHECK, copy), f"checking {copy} with SQLite's quick_check")
    return json.loads(job.shell.run(_python(_COUNT, copy, ",".join(COUNTED)), f"counting the rows of {copy}"))


def _swap_script(path: str) -> str:
    """One shell script, with Temporal stopped: the live file settled and kept as `.previous` (a hard
    link), the staged file given its owner and mode, then renamed over it (one step), and the live file's
    sidecars removed."""
    live, staged, previous = (shlex.quote(path + suffix) for suffix in ("", STAGING, PREVIOUS))
    sidecars = " ".join(SIDECARS)
    return f"""set -e
if [ -e {live} ]; then
    # A live file SQLite cannot open keeps its sidecars under the previous name: its data is in them.
    runuser -u temporal -- {_python(_SETTLE, path)} || for end in {sidecars}; do
        if [ -e {live}$end ]; then ln -f {live}$end {previous}$end; rm -f {live}$end; fi
    done
    ln -f {live} {previous}
    chown --reference={live} {staged}
    chmod --reference={live} {staged}
else
    chown temporal:temporal {staged}
fi
rm -f {" ".join(shlex.quote(path + STAGING + end) for end in SIDECARS)}
mv -f {staged} {live}
rm -f {" ".join(shlex.quote(path + end) for end in SIDECARS)}
"""


def restore(job: RestoreJob) -> dict:
    """The set's SQLite file staged beside the live one and checked (sha256, quick_check, row counts
    against the set's) while Temporal runs; then Temporal stopped, the file swapped in, Temporal started
    again and the previous file removed. Returns the row counts found before the server resumed its work
    (a running workflow adds to its history as soon as it is back)."""
    path = settings_for(job.profile).db_file
    _clear_leftovers(job, (STAGING, PREVIOUS))
    try:
        found = stage(job, path + STAGING)
        wrong = differences(job.figures, found)
        if wrong:
            raise RestoreRefused(
                f"{job.node.name}: temporal: the file restored from the set does not match the "
                f"manifest ({'; '.join(wrong)}); {path} was not replaced"
            )
    except BaseException:
        _remove_quietly(job, path + STAGING)
        raise
    try:
        job.shell.run(f"systemctl stop {UNIT}", "stopping Temporal")
        job.shell.run(_swap_script(path), "swapping the restored SQLite file in")
    except BaseException:
        _remove_quietly(job, path + STAGING)
        raise
    finally:
        job.shell.run(f"systemctl start {UNIT}", "starting Temporal again")
    try:
        _remove(job, path + PREVIOUS)
    except HostCommandError as error:
        logger.warning(f"{error}; the next restore removes it")
    return found


def drill(job: RestoreJob) -> dict:
    """The set's SQLite file staged beside the live one (`.drill`) the way a restore stages it, counted and
    removed: the live file is never touched."""
    copy = settings_for(job.profile).db_file + DRILL
    _clear_leftovers(job, (DRILL,))
    try:
        return stage(job, copy)
    finally:
        _remove_quietly(job, copy)
