#!/usr/bin/python3
"""A test double of temporal-server, not Temporal: `temporal-server --root R --config C --env E start`.

It keeps the contract roles/temporal relies on: it reads R/C/E.yaml, which must start with
`# enable-template` and takes the database passwords from `{{ env "NAME" | quote }}`; it logs in to
both SQL datastores (pluginName postgres12) with the configured users and refuses to start while a
schema is missing or still at 0.0 (update-schema not run); then it serves the frontend gRPC and HTTP
ports and metrics of the configuration through the temporal CLI's embedded server.
"""

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

TEMPLATE = re.compile(r'\{\{\s*env\s+"([A-Z_]+)"\s*\|\s*quote\s*\}\}')


def configuration(path: Path) -> str:
    text = path.read_text()
    if not text.startswith("# enable-template"):
        sys.exit(f"{path}: no '# enable-template' line: env calls would stay unexpanded")
    return TEMPLATE.sub(lambda match: json.dumps(os.environ.get(match.group(1), "")), text)


def values(text: str, key: str) -> list[str]:
    return [json.loads(v) if v.startswith('"') else v for v in re.findall(rf"^\s*{key}:\s*(.+?)\s*$", text, re.M)]


def check_datastores(text: str) -> None:
    keys = ("pluginName", "databaseName", "connectAddr", "user", "password")
    for plugin, database, address, user, password in zip(*(values(text, key) for key in keys), strict=True):
        if plugin != "postgres12":
            sys.exit(f"unsupported pluginName {plugin}")
        host, port = address.rsplit(":", 1)
        query = f"SELECT curr_version FROM schema_version WHERE db_name = '{database}'"
        target = f"host={host} port={port} dbname={database} user={user}"
        result = subprocess.run(
            ["psql", "-XAtq", target, "-c", query],
            env={**os.environ, "PGPASSWORD": password},
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            sys.exit(f"datastore {database}: {result.stderr.strip()}")
        if result.stdout.strip() in ("", "0.0"):
            sys.exit(f"datastore {database}: schema not set up (version {result.stdout.strip() or 'none'})")


def main() -> None:
    parser = argparse.ArgumentParser(prog="temporal-server")
    parser.add_argument("--root", "-r", default=".")
    parser.add_argument("--config", "-c", default="config")
    parser.add_argument("--env", "-e", default="development")
    parser.add_argument("command", choices=["start"])
    options = parser.parse_args()
    text = configuration(Path(options.root) / options.config / f"{options.env}.yaml")
    check_datastores(text)
    frontend = text.split("frontend:", 1)[1]
    grpc, http = values(frontend, "grpcPort")[0], values(frontend, "httpPort")[0]
    metrics = values(text, "listenAddress")[0].rsplit(":", 1)[1]
    os.execvp(
        "temporal",
        [
            "temporal",
            "server",
            "start-dev",
            "--ip",
            "0.0.0.0",
            "--port",
            grpc,
            "--http-port",
            http,
            "--metrics-port",
            metrics,
            "--headless",
            "--db-filename",
            "temporal-double.db",
            "--log-level",
            "warn",
        ],
    )


if __name__ == "__main__":
    main()
