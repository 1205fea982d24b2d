"""A test double of Keycloak's `kc.sh`, following the contract roles/keycloak relies on.

    kc.sh build                           records the build options of conf/keycloak.conf
    kc.sh start --optimized [--import-realm]
        refuses to start without a build or when the build options changed since (as Keycloak does);
        logs in to PostgreSQL with db-url, db-username and KC_DB_PASSWORD (a start fails without it);
        creates the bootstrap admin from KC_BOOTSTRAP_ADMIN_USERNAME/PASSWORD once;
        imports data/import/*-realm.json for realms that do not exist yet;
        serves, on http-host:http-port, /realms/NAME/.well-known/openid-configuration and the master
        realm's password grant for admin-cli, and on http-management-port /health/ready.

It is not Keycloak: it is named a double everywhere it is used.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from urllib.parse import parse_qs, urlparse

HOME = Path(__file__).resolve().parent.parent
BUILD_OPTIONS = ("db", "health-enabled", "metrics-enabled")
BUILT = HOME / "lib" / "quarkus" / "double-build.json"
STATE = HOME / "data" / "double"


def config() -> dict[str, str]:
    options = {}
    for line in (HOME / "conf" / "keycloak.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            options[key.strip()] = value.strip()
    return options


def build() -> int:
    options = {key: config().get(key) for key in BUILD_OPTIONS}
    if options["db"] != "postgres":
        print(f"ERROR: db={options['db']}: this double supports postgres only", file=sys.stderr)
        return 1
    BUILT.write_text(json.dumps(options, sort_keys=True))
    print("Server configuration updated and persisted.")
    return 0


def database_login(options: dict[str, str]) -> None:
    match = re.fullmatch(r"jdbc:postgresql://([^:/]+):(\d+)/(\w+)", options["db-url"])
    if not match:
        raise SystemExit(f"ERROR: unsupported db-url {options['db-url']}")
    host, port, name = match.groups()
    environment = {**os.environ, "PGPASSWORD": os.environ.get("KC_DB_PASSWORD", "")}
    subprocess.run(
        ["psql", "-XAtq", f"host={host} port={port} dbname={name} user={options['db-username']}", "-c", "SELECT 1"],
        env=environment,
        check=True,
        capture_output=True,
    )


def start(arguments: list[str]) -> int:
    options = config()
    if "--optimized" in arguments:
        if not BUILT.exists():
            print("ERROR: the server was not built: run `kc.sh build` first", file=sys.stderr)
            return 1
        if json.loads(BUILT.read_text()) != {key: options.get(key) for key in BUILD_OPTIONS}:
            print("ERROR: build time options changed since the last build: run `kc.sh build`", file=sys.stderr)
            return 1
    try:
        database_login(options)
    except subprocess.CalledProcessError as failure:
        print(f"ERROR: cannot log in to the database: {failure.stderr.decode().strip()}", file=sys.stderr)
        return 1
    STATE.mkdir(parents=True, exist_ok=True)
    admin = STATE / "admin.json"
    if not admin.exists() and os.environ.get("KC_BOOTSTRAP_ADMIN_USERNAME"):
        admin.write_text(
            json.dumps(
                {
                    "username": os.environ["KC_BOOTSTRAP_ADMIN_USERNAME"],
                    "password": os.environ.get("KC_BOOTSTRAP_ADMIN_PASSWORD", ""),
                }
            )
        )
    if "--import-realm" in arguments:
        for document in sorted((HOME / "data" / "import").glob("*.json")):
            realm = json.loads(document.read_text())
            target = STATE / f"realm-{realm['realm']}.json"
            if not target.exists():
                target.write_text(json.dumps(realm))
    serve(options)
    return 0


def serve(options: dict[str, str]) -> None:
    issuer_base = options.get("hostname", "")

    class Public(BaseHTTPRequestHandler):
        def _send(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            match = re.fullmatch(r"/realms/([\w-]+)/\.well-known/openid-configuration", urlparse(self.path).path)
            if match and (STATE / f"realm-{match.group(1)}.json").exists():
                return self._send(200, {"issuer": f"{issuer_base}/realms/{match.group(1)}"})
            return self._send(404, {"error": "Realm does not exist"})

        def do_POST(self) -> None:  # noqa: N802
            form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
            field = lambda name: form.get(name, [""])[0]  # noqa: E731
            admin = json.loads((STATE / "admin.json").read_text())
            granted = (
                self.path == "/realms/master/protocol/openid-connect/token"
                and field("client_id") == "admin-cli"
                and field("grant_type") == "password"
                and field("username") == admin["username"]
                and field("password") == admin["password"]
            )
            return (
                self._send(200, {"access_token": "double"}) if granted else self._send(401, {"error": "invalid_grant"})
            )

        def log_message(self, *args) -> None:
            pass

    class Management(Public):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/health/ready":
                return self._send(200, {"status": "UP", "checks": []})
            return self._send(404, {})

    address = options["http-host"]
    management = ThreadingHTTPServer((address, int(options.get("http-management-port", 9000))), Management)
    Thread(target=management.serve_forever, daemon=True).start()
    print(f"Keycloak double listening on http://{address}:{options['http-port']}", flush=True)
    ThreadingHTTPServer((address, int(options["http-port"])), Public).serve_forever()


if __name__ == "__main__":
    command, *rest = sys.argv[1:] or ["help"]
    sys.exit({"build": lambda: build(), "start": lambda: start(rest)}.get(command, lambda: 2)())
