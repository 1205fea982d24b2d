"""Backup and restore of roles/temporal in dev mode: the SQLite file, copied consistently with
SQLite's online backup (python3's sqlite3 on the host) while Temporal runs. In server mode Temporal
keeps its state in PostgreSQL, which roles/postgres backs up."""

from __future__ import annotations

import json
import shlex

from gpuaas.backup.service import BackupJob, RestoreJob, ServiceHost
from gpuaas.backup.transport import copy_stream
from gpuaas.profile import Profile
from roles.temporal.config import settings_for

SERVICE = "temporal"
DEPENDANTS: tuple[str, ...] = ()
UNIT = "temporal"
ARTIFACT = "temporal.db"
#: Tables that change only with the platform's work (the server rewrites others, such as task
#: queues and membership, on its own as soon as it starts).
COUNTED = ("namespaces", "executions", "current_executions", "history_tree", "history_node")

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


def restore(job: RestoreJob) -> dict:
    """Stop Temporal, replace the SQLite file (its journal files go), count its rows, start Temporal
    again. The rows are counted before the server resumes: a running workflow adds to its history as
    soon as the server is back."""
    path = settings_for(job.profile).db_file
    staged = shlex.quote(path + ".restore")
    with job.open(ARTIFACT) as db, job.shell.writer(f"umask 077 && cat > {staged}", "staging the SQLite file") as out:
        copy_stream(db, out)
    quoted = shlex.quote(path)
    job.shell.run(f"systemctl stop {UNIT} && chown temporal:temporal {staged} && mv {staged} {quoted} && "
                  f"rm -f {quoted}-wal {quoted}-shm {quoted}-journal", "replacing Temporal's SQLite file")  # fmt: skip
    try:
        return figures(job)
    finally:
        job.shell.run(f"systemctl start {UNIT}", "starting Temporal again")


def drill(job: RestoreJob) -> dict:
    """Count the rows of the SQLite file from the set, in a scratch copy that is then removed."""
    scratch = "/var/tmp/gpuaas-temporal-drill.db"
    with job.open(ARTIFACT) as db, job.shell.writer(f"umask 077 && cat > {scratch}", "staging the drill copy") as out:
        copy_stream(db, out)
    try:
        return json.loads(job.shell.run(_python(_COUNT, scratch, ",".join(COUNTED)), "counting the drill copy"))
    finally:
        job.shell.run(f"rm -f {scratch}", "removing the drill copy")
