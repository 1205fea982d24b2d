"""The restore parts of roles/postgres and roles/temporal computed without a host: the names of the
copies kept beside a live database, the refusal of a set's databases the profile does not list, and
the SQL and shell text that reach a host."""

from __future__ import annotations

import re
import shlex

import pytest

from gpuaas.backup.service import RestoreJob, RestoreRefused
from gpuaas.profile import load_profile
from roles.postgres import backup as postgres_backup
from roles.temporal import backup as temporal_backup


class UntouchedShell:
    """A host shell that fails the test if anything reaches the host."""

    def __init__(self):
        self.commands: list[str] = []

    def run(self, command: str, what: str, **_) -> str:
        self.commands.append(command)
        raise AssertionError(f"{what} reached the host")


def job(names: list[str]) -> RestoreJob:
    profile = load_profile("local")
    return RestoreJob(profile, profile.group("data")[0], UntouchedShell(), names=names)


def test_a_copy_beside_a_database_keeps_within_postgres_names():
    assert postgres_backup.beside("platform", postgres_backup.STAGING) == "platform__restoring"
    first, second = "a" * 60 + "one", "a" * 60 + "two"
    copies = {
        postgres_backup.beside(name, suffix)
        for name in (first, second)
        for suffix in (postgres_backup.STAGING, postgres_backup.PREVIOUS)
    }
    assert len(copies) == 4
    assert all(len(copy) <= postgres_backup.MAX_NAME for copy in copies)
    assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", copy) for copy in copies)


@pytest.mark.parametrize("stranger", ["postgres.dump", "template1.dump", "platform.sql", "../platform.dump"])
def test_a_database_the_profile_does_not_list_is_refused_before_the_host_is_touched(stranger):
    refused = job(["platform.dump", stranger])
    for run in (postgres_backup.restore, postgres_backup.drill):
        with pytest.raises(RestoreRefused) as raised:
            run(refused)
        message = str(raised.value)
        assert repr(stranger) in message and "inventories/local.yml" in message
        assert "services.postgres.databases" in message and "no database was touched" in message
    assert refused.shell.commands == []


def test_the_copy_is_made_like_the_live_database_and_the_swap_is_one_transaction():
    create = postgres_backup.create_beside_sql("platform", "platform__restoring")
    for kept in (
        "OWNER %I",
        "ENCODING %L",
        "LC_COLLATE %L",
        "CONNECTION LIMIT",
        "aclexplode",
        "pg_db_role_setting",
        "COMMENT ON DATABASE",
    ):
        assert kept in create
    swap = postgres_backup.swap_sql("platform", "platform__restoring", "platform__previous")
    closed = swap.index("ALLOW_CONNECTIONS false")
    old_aside = swap.index("RENAME TO %I', live, previous")
    new_in = swap.index("RENAME TO %I', staged, live", old_aside)
    assert closed < swap.index("COMMIT;") < old_aside < new_in < swap.index("EXCEPTION WHEN OTHERS")


def test_names_reach_sql_quoted_and_the_shell_never():
    create = postgres_backup.create_beside_sql("o'neil", "o'neil__restoring")
    assert "'o''neil'" in create and "'o''neil__restoring'" in create
    script = temporal_backup._swap_script("/var/lib/temporal/it's.db")
    assert shlex.quote("/var/lib/temporal/it's.db") in script
    assert " /var/lib/temporal/it's.db" not in script
