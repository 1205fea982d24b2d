"""The files roles/keycloak writes on a host, computed from the profile (used by the deploy and by render)."""

from __future__ import annotations

import hashlib
import json
import posixpath
from pathlib import Path

from gpuaas import secrets
from gpuaas.profile import Host, Profile
from gpuaas.secrets import Secret
from gpuaas.templating import render_template
from roles.keycloak.settings import KeycloakSettings

TEMPLATES = Path(__file__).parent / "templates"
INSTALL_ROOT = "/opt/gpuaas/keycloak"
HOME_LINK = "/opt/keycloak"
ENV_FILE = "/etc/keycloak/keycloak.env"
UNIT = "/etc/systemd/system/keycloak.service"


def settings_for(profile: Profile) -> KeycloakSettings:
    return profile.services.keycloak


def deployed(profile: Profile) -> bool:
    return settings_for(profile).enabled


def version(profile: Profile) -> str:
    return profile.artifacts[settings_for(profile).artifact].version


def dist_dir(profile: Profile) -> str:
    """Where the distribution unpacks: the zip's own top directory, one per version."""
    return posixpath.join(INSTALL_ROOT, f"keycloak-{version(profile)}")


def paths(profile: Profile) -> dict[str, str]:
    dist = dist_dir(profile)
    return {
        "dist": dist,
        "archive": f"{dist}.zip",
        "kc": f"{dist}/bin/kc.sh",
        "config": f"{dist}/conf/keycloak.conf",
        "realm": f"{dist}/data/import/{settings_for(profile).realm}-realm.json",
        # What the last `kc.sh build` was made from: a build is current only when this matches.
        "build_stamp": f"{dist}/lib/quarkus/gpuaas-build.sha256",
    }


def public_url(profile: Profile, name: str) -> str:
    return f"https://{name}.{profile.dns.zone}"


def database_password_ref(profile: Profile) -> str:
    settings = settings_for(profile)
    return next(db.password for db in profile.services.postgres.databases if db.name == settings.database)


def context(profile: Profile, node: Host) -> dict:
    settings = settings_for(profile)
    return {
        "settings": settings,
        "address": str(node.address),
        "paths": paths(profile),
        "hostname_url": public_url(profile, settings.hostname),
        "postgres_port": profile.services.postgres.port,
        "env_file": ENV_FILE,
    }


def realm(profile: Profile) -> str:
    """The platform realm as Keycloak's import JSON: the realm and its OIDC clients (no secrets in it)."""
    settings = settings_for(profile)
    clients = [
        {
            "clientId": client.client_id,
            "enabled": True,
            "protocol": "openid-connect",
            "publicClient": client.public,
            "standardFlowEnabled": True,
            "directAccessGrantsEnabled": False,
            "rootUrl": public_url(profile, client.host),
            "redirectUris": [f"{public_url(profile, client.host)}/*"],
            "webOrigins": [public_url(profile, client.host)],
            "attributes": {"pkce.code.challenge.method": "S256"} if client.public else {},
        }
        for client in settings.clients
    ]
    document = {
        "realm": settings.realm,
        "enabled": True,
        "sslRequired": "external",
        "registrationAllowed": False,
        "bruteForceProtected": True,
        "clients": clients,
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def rendered_files(profile: Profile, node: Host) -> dict[str, str]:
    """keycloak.conf, the unit and the realm; nothing when Keycloak is off (the env file holds secrets)."""
    if not deployed(profile):
        return {}
    data, where = context(profile, node), paths(profile)
    return {
        where["config"]: render_template(str(TEMPLATES / "keycloak.conf.j2"), data),
        UNIT: render_template(str(TEMPLATES / "keycloak.service.j2"), data),
        where["realm"]: realm(profile),
    }


def build_stamp(config_text: str) -> str:
    return hashlib.sha256(config_text.encode("utf-8")).hexdigest() + "\n"


def environment_file(settings: KeycloakSettings, db_password: Secret, admin_password: Secret) -> Secret:
    """The unit's EnvironmentFile: the database password and the bootstrap admin."""
    return secrets.environment_file(
        "keycloak",
        {
            "KC_DB_PASSWORD": db_password,
            "KC_BOOTSTRAP_ADMIN_USERNAME": settings.admin_user,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": admin_password,
        },
    )
