#!/usr/bin/python3
"""A test double of temporal-sql-tool (PostgreSQL), not the real tool: the two commands roles/temporal runs.

    temporal-sql-tool --plugin postgres12 --ep HOST -p PORT -u USER --db DB setup-schema -v 0.0
    temporal-sql-tool ... update-schema -d VERSIONED_DIR

The password comes from SQL_PASSWORD. setup-schema creates the version tables and records 0.0;
update-schema applies, in order, every vX.Y/ of the directory newer than the recorded version (the
SQL files its manifest.json lists) and records each, as the real tool does.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

VERSION_TABLES = """
CREATE TABLE IF NOT EXISTS schema_version (version_partition INT NOT NULL, db_name VARCHAR(255) NOT NULL,
  creation_time TIMESTAMP, curr_version VARCHAR(64), min_compatible_version VARCHAR(64),
  PRIMARY KEY (version_partition, db_name));
CREATE TABLE IF NOT EXISTS schema_update_history (version_partition INT NOT NULL, year INT NOT NULL,
  month INT NOT NULL, update_time TIMESTAMP NOT NULL, description VARCHAR(255), manifest_md5 VARCHAR(64),
  new_version VARCHAR(64), old_version VARCHAR(64), PRIMARY KEY (version_partition, year, month, update_time));
"""


def psql(options, sql: str) -> str:
    target = f"host={options.ep} port={options.p} dbname={options.db} user={options.u}"
    environment = {**os.environ, "PGPASSWORD": os.environ.get("SQL_PASSWORD", "")}
    result = subprocess.run(
        ["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", target], input=sql, text=True, env=environment, capture_output=True
    )
    if result.returncode != 0:
        sys.exit(f"sql error: {result.stderr.strip()}")
    return result.stdout.strip()


def record(options, version: str, old: str, description: str) -> str:
    return (
        f"INSERT INTO schema_version VALUES (0, '{options.db}', now(), '{version}', '{version}') "
        f"ON CONFLICT (version_partition, db_name) DO UPDATE SET curr_version = '{version}', creation_time = now();"
        f"INSERT INTO schema_update_history VALUES (0, extract(year FROM now()), extract(month FROM now()), "
        f"clock_timestamp(), '{description}', '', '{version}', '{old}');"
    )


def key(version: str) -> tuple:
    return tuple(int(part) for part in version.lstrip("v").split("."))


def main() -> None:
    parser = argparse.ArgumentParser(prog="temporal-sql-tool")
    for flag in ("--plugin", "--ep", "-p", "-u", "--db"):
        parser.add_argument(flag, required=True)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("setup-schema").add_argument("-v", required=True)
    commands.add_parser("update-schema").add_argument("-d", required=True)
    options = parser.parse_args()
    if options.plugin != "postgres12":
        sys.exit(f"unsupported plugin {options.plugin}")
    if options.command == "setup-schema":
        psql(options, VERSION_TABLES + record(options, options.v, "", "initial version"))
        return
    current = psql(options, f"SELECT curr_version FROM schema_version WHERE db_name = '{options.db}'")
    if not current:
        sys.exit("schema_version is empty: run setup-schema first")
    for directory in sorted(Path(options.d).glob("v*"), key=lambda path: key(path.name)):
        if key(directory.name) <= key(current):
            continue
        manifest = json.loads((directory / "manifest.json").read_text())
        statements = "".join((directory / name).read_text() for name in manifest["SchemaUpdateCqlFiles"])
        psql(
            options,
            f"BEGIN;{statements}{record(options, manifest['CurrVersion'], current, manifest['Description'])}COMMIT;",
        )
        current = manifest["CurrVersion"]


if __name__ == "__main__":
    main()
