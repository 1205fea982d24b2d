"""The whole desired state of roles/keycloak as probes, checked in one round trip (see gpuaas.probe)."""

from __future__ import annotations

from gpuaas.probe import Probe, account_probe, owned_files_probe, packages_probe, services_probe
from gpuaas.profile import Host, Profile
from gpuaas.secrets import Secret
from roles.keycloak.config import ENV_FILE, HOME_LINK, UNIT, paths, realm, rendered_files, settings_for


def probes(profile: Profile, node: Host, environment: Secret, build_stamp: str) -> list[Probe]:
    settings, where, rendered = settings_for(profile), paths(profile), rendered_files(profile, node)
    return [
        packages_probe([settings.java_package, "unzip"]),
        account_probe("keycloak"),
        Probe("home", f"readlink {HOME_LINK}", where["dist"]),
        owned_files_probe(
            "files",
            {
                where["config"]: (rendered[where["config"]], "640", "keycloak", "keycloak"),
                where["realm"]: (realm(profile), "640", "keycloak", "keycloak"),
                where["build_stamp"]: (build_stamp, "644", "root", "root"),
                ENV_FILE: (environment.reveal(), "640", "root", "keycloak"),
                UNIT: (rendered[UNIT], "644", "root", "root"),
            },
        ),
        services_probe(running=["keycloak"], enabled=["keycloak"]),
    ]
