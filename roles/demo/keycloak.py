"""The Keycloak part of a demo reset: the baseline's personas in the platform realm, imported afresh
(the realm deleted, then created from its import JSON through Keycloak's admin REST API on the data
host), and the sign-in check that shows each persona afterwards.

Secrets (the personas' password, the TOTP seed, the bootstrap admin's password) stay inside Secret
objects and reach the host only on curl's standard input: never in an argument, an output line or an
error message. Keycloak listens on the host's own address (`http-host` of roles/keycloak), which is
where the commands, run on that host, call it."""

from __future__ import annotations

import base64
import json
import shlex
from urllib.parse import quote, urlencode

import pyotp

from gpuaas.backup.service import ServiceHost
from gpuaas.backup.transport import HostCommandError
from gpuaas.profile import Profile
from gpuaas.secrets import Secret, resolve
from roles.demo.baseline import PERSONAS, Baseline, Persona
from roles.keycloak.config import realm, settings_for

#: The public client of the sign-in check: the password grant (direct access) only, no browser flow.
CHECK_CLIENT = "demo-check"
NOT_SET_UP = "Account is not fully set up"
#: The OTP policy of the TOTP persona's credential: Keycloak's defaults, which authenticator apps expect.
TOTP_DATA = {"subType": "totp", "digits": 6, "period": 30, "algorithm": "HmacSHA1", "counter": 0}


def check_client() -> dict:
    """The `demo-check` client: public, the password grant enabled, no redirect URIs."""
    return {
        "clientId": CHECK_CLIENT,
        "name": "demo sign-in check",
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": True,
        "standardFlowEnabled": False,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": True,
        "serviceAccountsEnabled": False,
        "redirectUris": [],
        "webOrigins": [],
        "attributes": {},
    }


def _names(full: str) -> tuple[str, str]:
    """First and last name: the last word is the last name. A one-word name is both, since Keycloak's
    default user profile requires both and would otherwise stop the sign-in for a profile update."""
    first, _, last = full.strip().rpartition(" ")
    return (first or last), last


def user(persona: Persona, password: Secret, seed: Secret | None) -> dict:
    """One persona as a user of Keycloak's realm representation, with its credentials."""
    first, last = _names(persona.name)
    credentials = [{"type": "password", "value": password.reveal(), "temporary": False}]
    entry = {
        "username": persona.username,
        "enabled": True,
        "firstName": first,
        "lastName": last,
        "email": persona.email,
        "emailVerified": True,
        "realmRoles": [persona.persona],
        "credentials": credentials,
    }
    if persona.tenant is not None:
        entry["attributes"] = {"tenant": [persona.tenant]}
    if persona.mfa == "totp":
        if seed is None:
            raise ValueError(f"persona {persona.username} has mfa: totp but no seed was given")
        # Keycloak's realm import takes secretData and credentialData as JSON text.
        credentials.append(
            {
                "type": "otp",
                "userLabel": "demo",
                "secretData": json.dumps({"value": seed.reveal()}),
                "credentialData": json.dumps(TOTP_DATA),
            }
        )
    if persona.mfa == "pending":
        entry["requiredActions"] = ["CONFIGURE_TOTP"]
    return entry


def realm_import(profile: Profile, baseline: Baseline) -> Secret:
    """The platform realm's import JSON (roles/keycloak's realm and clients) with the baseline's
    personas as users, their persona kinds as realm roles and the `demo-check` client; as a Secret,
    since it holds the personas' password and the TOTP seed."""
    document = json.loads(realm(profile))
    password = resolve(profile, baseline.persona_password)
    seed = resolve(profile, baseline.mfa_seed) if any(p.mfa == "totp" for p in baseline.personas) else None
    document["clients"] = [c for c in document.get("clients", []) if c["clientId"] != CHECK_CLIENT]
    document["clients"].append(check_client())
    roles = document.setdefault("roles", {}).setdefault("realm", [])
    present = {role["name"] for role in roles}
    roles += [{"name": kind, "description": f"demo persona: {kind}"} for kind in PERSONAS if kind not in present]
    document["users"] = [user(persona, password, seed) for persona in baseline.personas]
    names = ", ".join(secret.name for secret in (password, seed) if secret is not None)
    return Secret(f"{document['realm']} realm import ({names})", json.dumps(document, indent=2, sort_keys=True) + "\n")


def api_url(target: ServiceHost) -> str:
    """Keycloak's HTTP listener on the data host: its address and `http_port` (roles/keycloak's
    keycloak.conf), reached from the host itself."""
    address = target.node.address
    host = f"[{address}]" if getattr(address, "version", 4) == 6 else str(address)
    return f"http://{host}:{settings_for(target.profile).http_port}"


#: Line 1 of stdin: the admin password (to curl through printf, a shell builtin); the rest: the realm
#: JSON, read by curl from descriptor 4. The token goes to curl as a header file on its stdin.
_REIMPORT = r"""IFS= read -r password
api={api}
token=$(printf '%s' "$password" | curl -sS --max-time 30 -d grant_type=password -d client_id=admin-cli \
  --data-urlencode username={admin} --data-urlencode password@- "$api/realms/master/protocol/openid-connect/token" \
  | sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')
[ -n "$token" ] || {{ echo "no admin token: the master realm refused the password grant of admin-cli for {admin}" \
  "or did not answer at $api" >&2; exit 1; }}
hdr() {{ printf 'Authorization: Bearer %s\n' "$token"; }}
code=$(hdr | curl -sS --max-time 60 -o /dev/null -w '%{{http_code}}' -H @- -X DELETE "$api/admin/realms/{realm}")
case $code in 204|404) ;; *) echo "deleting the realm {realm} answered HTTP $code" >&2; exit 1 ;; esac
exec 4<&0
answer=$(hdr | curl -sS --max-time 300 -w '\n%{{http_code}}' -H @- -H 'Content-Type: application/json' \
  --data-binary @/dev/fd/4 "$api/admin/realms")
code=$(printf '%s\n' "$answer" | tail -n 1)
[ "$code" = 201 ] || {{ echo "creating the realm {realm} answered HTTP $code:" \
  "$(printf '%s\n' "$answer" | sed -n 's/.*"errorMessage" *: *"\([^"]*\)".*/\1/p')" >&2; exit 1; }}
"""


def reimport(target: ServiceHost, realm: Secret) -> None:
    """Replaces the profile's platform realm on the host with `realm` (realm_import's JSON): deletes
    it, with its users and sessions, when it exists, then creates it from the JSON, through the admin
    REST API with a token of the master realm's bootstrap admin. HostCommandError when any step fails."""
    settings = settings_for(target.profile)
    named = json.loads(realm.reveal()).get("realm")
    if named != settings.realm:
        raise HostCommandError(f"the import is of realm {named!r}, the profile's realm is {settings.realm}")
    script = _REIMPORT.format(
        api=shlex.quote(api_url(target)), admin=shlex.quote(settings.admin_user), realm=quote(settings.realm)
    )
    target.shell.run(
        script,
        f"re-importing the Keycloak realm {settings.realm}",
        secret=resolve(target.profile, settings.admin_password),
        input=realm.reveal().encode(),
    )


class _KeycloakTOTP(pyotp.TOTP):
    """pyotp's TOTP without its minimum key length (pyotp 2.12 asks for 112 bits): Keycloak takes a
    seed of any length, and the check is to compute what Keycloak expects, not to judge the seed."""

    min_secret_length_bits = 8


def totp_code(seed: Secret) -> str:
    """The current code of Keycloak's TOTP credential with this raw seed (its UTF-8 bytes are the key)."""
    key = base64.b32encode(seed.reveal().encode()).decode()
    return _KeycloakTOTP(key, digits=TOTP_DATA["digits"], interval=TOTP_DATA["period"]).now()


#: Line 1 of stdin: the url-encoded form (it holds the password). Prints the HTTP status, then the
#: answer's body unless it is 200 (the tokens are not carried back).
_TOKEN_REQUEST = r"""IFS= read -r form
answer=$(printf '%s' "$form" | curl -sS --max-time 30 -w '\n%{{http_code}}' \
  -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @- {url}) || exit $?
code=$(printf '%s\n' "$answer" | tail -n 1)
if [ "$code" = 200 ]; then echo 200; else echo "$code"; printf '%s\n' "$answer" | sed '$d'; fi
"""


def _token_request(target: ServiceHost, realm_name: str, persona: Persona, form: Secret) -> tuple[int, dict]:
    """The realm's token endpoint answering `form` on the host: (HTTP status, its error fields)."""
    url = f"{api_url(target)}/realms/{quote(realm_name, safe='')}/protocol/openid-connect/token"
    output = target.shell.run(
        _TOKEN_REQUEST.format(url=shlex.quote(url)),
        f"signing in as persona {persona.username} to realm {realm_name}",
        secret=form,
    )
    status, _, body = output.partition("\n")
    try:
        answer = json.loads(body) if body.strip() else {}
    except ValueError:
        answer = {}
    fields = {key: answer[key] for key in ("error", "error_description") if isinstance(answer, dict) and key in answer}
    return int(status.strip() or 0), fields


def sign_in(target: ServiceHost, realm_name: str, persona: Persona, password: Secret, seed: Secret | None) -> str:
    """Shows the persona signs in with the `demo-check` client's password grant (with the current
    TOTP code for an `mfa: totp` persona): "signed in"; for `mfa: pending`, that Keycloak answers the
    account is not fully set up: "MFA set-up pending". Changes nothing on the host but Keycloak's
    session and event records. HostCommandError naming the persona otherwise (never the password)."""
    form = {"grant_type": "password", "client_id": CHECK_CLIENT, "username": persona.username}
    form["password"] = password.reveal()
    who = f"persona {persona.username} ({persona.persona}, mfa {persona.mfa})"
    if persona.mfa == "totp":
        if seed is None:
            raise HostCommandError(f"{target.node.name}: {who}: no TOTP seed to compute its code from")
        form["totp"] = totp_code(seed)
    status, answer = _token_request(target, realm_name, persona, Secret(f"{persona.username} sign-in", urlencode(form)))
    if persona.mfa == "pending":
        if status == 400 and answer.get("error") == "invalid_grant" and answer.get("error_description") == NOT_SET_UP:
            return "MFA set-up pending"
        expected = f'HTTP 400 invalid_grant "{NOT_SET_UP}"'
    elif status == 200:
        return "signed in"
    else:
        expected = "a token"
    got = " ".join(str(answer[key]) for key in ("error", "error_description") if key in answer) or "no error"
    raise HostCommandError(
        f"{target.node.name}: {who} in realm {realm_name}: expected {expected}, Keycloak answered HTTP {status}: {got}"
    )
