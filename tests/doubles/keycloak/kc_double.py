"""A test double of Keycloak's `kc.sh`, following the contract roles/keycloak relies on.

    kc.sh build                           records the build options of conf/keycloak.conf
    kc.sh start --optimized [--import-realm]
        refuses to start without a build or when the build options changed since (as Keycloak does);
        logs in to PostgreSQL with db-url, db-username and KC_DB_PASSWORD (a start fails without it);
        creates the bootstrap admin from KC_BOOTSTRAP_ADMIN_USERNAME/PASSWORD once;
        imports data/import/*-realm.json for realms that do not exist yet;
        serves, on http-host:http-port, /realms/NAME/.well-known/openid-configuration and the master
        realm's password grant for admin-cli, and on http-management-port /health/ready.

On http-port it also serves what a demo reset (roles/demo/keycloak.py) relies on:

    GET|DELETE /admin/realms/NAME, POST /admin/realms (a realm's import JSON)
        with the bearer token of the master realm's admin grant (401 otherwise); realms are kept in
        data/double/realm-NAME.json as the start's import keeps them; 404 for a realm that does not
        exist, 409 for one that does on POST, 204 for a delete (the master realm cannot be deleted);
    POST /realms/NAME/protocol/openid-connect/token (not master)
        the password grant of a public client with directAccessGrantsEnabled, for the realm's users:
        the password credential's value must match; a user with an otp credential must send a `totp`
        form field equal to its current code (the credential's digits, period and algorithm, HMAC of the
        raw secretData value, the previous and next window allowed), 401 invalid_grant "Invalid user
        credentials" otherwise; a user with requiredActions gets 400 invalid_grant "Account is not fully
        set up" (Keycloak checks credentials first, then required actions).

`public_server(address, port, state)` makes that HTTP server alone, so a test can serve realms from a
state directory without PostgreSQL or a build. Only the Python standard library is used (hosts run
it with plain python3).

It is not Keycloak: it is named a double everywhere it is used.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import struct
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from urllib.parse import parse_qs, urlparse

HOME = Path(__file__).resolve().parent.parent
BUILD_OPTIONS = ("db", "health-enabled", "metrics-enabled")
BUILT = HOME / "lib" / "quarkus" / "double-build.json"
STATE = HOME / "data" / "double"
#: The master realm's admin token (one fixed value: the double has no expiry or signatures).
ADMIN_TOKEN = "double"
REALM = r"[\w-]+"
INVALID_CREDENTIALS = {"error": "invalid_grant", "error_description": "Invalid user credentials"}
NOT_SET_UP = {"error": "invalid_grant", "error_description": "Account is not fully set up"}
ALGORITHMS = {"HmacSHA1": hashlib.sha1, "HmacSHA256": hashlib.sha256, "HmacSHA512": hashlib.sha512}


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
    if not (STATE / "admin.json").exists() and os.environ.get("KC_BOOTSTRAP_ADMIN_USERNAME"):
        bootstrap_admin(
            STATE, os.environ["KC_BOOTSTRAP_ADMIN_USERNAME"], os.environ.get("KC_BOOTSTRAP_ADMIN_PASSWORD", "")
        )
    if "--import-realm" in arguments:
        for document in sorted((HOME / "data" / "import").glob("*.json")):
            realm = json.loads(document.read_text())
            target = STATE / f"realm-{realm['realm']}.json"
            if not target.exists():
                target.write_text(json.dumps(realm))
    serve(options)
    return 0


def bootstrap_admin(state: Path, username: str, password: str) -> None:
    """The master realm's bootstrap admin, as a first start creates it."""
    (state / "admin.json").write_text(json.dumps({"username": username, "password": password}))


def realm_file(state: Path, name: str) -> Path:
    return state / f"realm-{name}.json"


def hotp(key: bytes, counter: int, digits: int = 6, digest=hashlib.sha1) -> str:
    """RFC 4226's code for `counter` (RFC 6238's TOTP is this of the time step)."""
    mac = hmac.new(key, struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


def _data(value) -> dict:
    """A credential's secretData or credentialData: a JSON string in Keycloak's representation."""
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def totp_matches(credential: dict, code: str, now: float | None = None) -> bool:
    """Whether `code` is the otp credential's code of the current, previous or next time step."""
    data, seed = _data(credential.get("credentialData")), _data(credential.get("secretData")).get("value", "")
    digits, period = int(data.get("digits", 6)), int(data.get("period", 30))
    digest = ALGORITHMS.get(data.get("algorithm", "HmacSHA1"))
    if digest is None or not seed or not code:
        return False
    step = int((time.time() if now is None else now) // period)
    return any(hmac.compare_digest(hotp(seed.encode(), step + drift, digits, digest), code) for drift in (-1, 0, 1))


def user_grant(realm: dict, field) -> tuple[int, dict]:
    """The password grant of a realm's public client for one of its users: (HTTP status, answer)."""
    client = next((c for c in realm.get("clients", []) if c.get("clientId") == field("client_id")), None)
    if client is None or not client.get("enabled", True) or not client.get("publicClient"):
        return 401, {"error": "invalid_client", "error_description": "Invalid client or Invalid client credentials"}
    if field("grant_type") != "password":
        return 400, {"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}
    if not client.get("directAccessGrantsEnabled"):
        return 400, {"error": "unauthorized_client", "error_description": "Client not allowed for direct access grants"}
    name = field("username").lower()
    user = next((u for u in realm.get("users", []) if u.get("username", "").lower() == name), None)
    credentials = (user or {}).get("credentials", [])
    passwords = [c.get("value", "") for c in credentials if c.get("type") == "password"]
    if user is None or not any(hmac.compare_digest(p.encode(), field("password").encode()) for p in passwords):
        return 401, INVALID_CREDENTIALS
    if not user.get("enabled", False):
        return 400, {"error": "invalid_grant", "error_description": "Account disabled"}
    otp = [c for c in credentials if c.get("type") == "otp"]
    if otp and not any(totp_matches(c, field("totp")) for c in otp):
        return 401, INVALID_CREDENTIALS
    if user.get("requiredActions"):
        return 400, NOT_SET_UP
    return 200, {"access_token": f"double-{realm['realm']}-{name}", "token_type": "Bearer", "expires_in": 300}


class DoubleServer(ThreadingHTTPServer):
    """An HTTP server of the double, with the state directory and issuer its handlers read."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler, state: Path, issuer_base: str = ""):
        self.state, self.issuer_base = state, issuer_base
        super().__init__(address, handler)


class Public(BaseHTTPRequestHandler):
    server: DoubleServer

    def _send(self, code: int, body: dict | None = None, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _admin(self) -> bool:
        """Whether the request carries the admin token; answers 401 when it does not."""
        if self.headers.get("Authorization") == f"Bearer {ADMIN_TOKEN}":
            return True
        self._send(401, {"error": "HTTP 401 Unauthorized"})
        return False

    def _realm(self, name: str) -> dict | None:
        path = realm_file(self.server.state, name)
        return json.loads(path.read_text()) if path.exists() else None

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = urlparse(self.path).path
        match = re.fullmatch(rf"/realms/({REALM})/\.well-known/openid-configuration", path)
        if match and realm_file(self.server.state, match.group(1)).exists():
            return self._send(200, {"issuer": f"{self.server.issuer_base}/realms/{match.group(1)}"})
        match = re.fullmatch(rf"/admin/realms/({REALM})", path)
        if match:
            if not self._admin():
                return None
            realm = self._realm(match.group(1))
            if realm is None:
                return self._send(404, {"error": "Realm not found."})
            return self._send(200, {key: value for key, value in realm.items() if key != "users"})
        return self._send(404, {"error": "Realm does not exist"})

    def do_DELETE(self) -> None:  # noqa: N802
        match = re.fullmatch(rf"/admin/realms/({REALM})", urlparse(self.path).path)
        if not match:
            return self._send(404, {"error": "Not found"})
        if not self._admin():
            return None
        if match.group(1) == "master":
            return self._send(400, {"error": "Can't delete master realm"})
        path = realm_file(self.server.state, match.group(1))
        if not path.exists():
            return self._send(404, {"error": "Realm not found."})
        path.unlink()
        return self._send(204)

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path = urlparse(self.path).path
        if path == "/admin/realms":
            return self._create_realm(body) if self._admin() else None
        match = re.fullmatch(rf"/realms/({REALM})/protocol/openid-connect/token", path)
        form = parse_qs(body.decode())
        field = lambda name: form.get(name, [""])[0]  # noqa: E731
        if match and match.group(1) == "master":
            admin = json.loads((self.server.state / "admin.json").read_text())
            granted = (
                field("client_id") == "admin-cli"
                and field("grant_type") == "password"
                and field("username") == admin["username"]
                and field("password") == admin["password"]
            )
            return (
                self._send(200, {"access_token": ADMIN_TOKEN})
                if granted
                else self._send(401, {"error": "invalid_grant"})
            )
        realm = self._realm(match.group(1)) if match else None
        if realm is None:
            return self._send(
                401 if not match else 404, {"error": "invalid_grant" if not match else "Realm not found."}
            )
        return self._send(*user_grant(realm, field))

    def _create_realm(self, body: bytes) -> None:
        try:
            realm = json.loads(body)
        except ValueError:
            return self._send(400, {"errorMessage": "Unrecognized field or malformed JSON"})
        name = realm.get("realm") if isinstance(realm, dict) else None
        if not isinstance(name, str) or not re.fullmatch(REALM, name):
            return self._send(400, {"errorMessage": "Realm name cannot be empty"})
        path = realm_file(self.server.state, name)
        if name == "master" or path.exists():
            return self._send(409, {"errorMessage": "Conflict detected. See logs for details"})
        path.write_text(json.dumps(realm))
        return self._send(201, headers={"Location": f"/admin/realms/{name}"})

    def log_message(self, *args) -> None:
        pass


class Management(Public):
    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/health/ready":
            return self._send(200, {"status": "UP", "checks": []})
        return self._send(404, {})


def public_server(address: str, port: int, state: Path, issuer_base: str = "") -> DoubleServer:
    """The server of http-port (port 0: any free one), serving the realms of `state`."""
    return DoubleServer((address, port), Public, state, issuer_base)


def serve(options: dict[str, str]) -> None:
    issuer_base, address = options.get("hostname", ""), options["http-host"]
    management_port = int(options.get("http-management-port", 9000))
    management = DoubleServer((address, management_port), Management, STATE, issuer_base)
    Thread(target=management.serve_forever, daemon=True).start()
    print(f"Keycloak double listening on http://{address}:{options['http-port']}", flush=True)
    public_server(address, int(options["http-port"]), STATE, issuer_base).serve_forever()


if __name__ == "__main__":
    command, *rest = sys.argv[1:] or ["help"]
    sys.exit({"build": lambda: build(), "start": lambda: start(rest)}.get(command, lambda: 2)())
