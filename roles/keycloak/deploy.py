"""Deploy of roles/keycloak: OpenJDK, the pinned distribution, kc.sh build, config, realm, unit."""

from __future__ import annotations

import hashlib
import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File, Sha256File
from pyinfra.operations import apt, files, server

from filters.jinja import jinja_env_kwargs
from gpuaas import artifacts
from gpuaas.context import current_node, current_profile
from gpuaas.operations import secret_file, service_account, service_running
from gpuaas.probe import in_place
from gpuaas.secrets import resolve
from gpuaas.templating import render_template
from roles.keycloak.config import (
    ENV_FILE,
    HOME_LINK,
    INSTALL_ROOT,
    TEMPLATES,
    UNIT,
    build_stamp,
    context,
    database_password_ref,
    environment_file,
    paths,
    realm,
    settings_for,
)
from roles.keycloak.state import probes


@deploy("Keycloak")
def keycloak() -> None:
    profile, node = current_profile(), current_node()
    settings = settings_for(profile)
    # Verified on the controller before any operation is queued: a mismatch stops the deploy here.
    archive = artifacts.verified(settings.artifact, profile.artifacts[settings.artifact])
    where, data = paths(profile), context(profile, node)
    quoted = {key: shlex.quote(path) for key, path in where.items()}
    environment = environment_file(
        settings, resolve(profile, database_password_ref(profile)), resolve(profile, settings.admin_password)
    )
    stamp = build_stamp(render_template(str(TEMPLATES / "keycloak.conf.j2"), data))
    if in_place("Keycloak", probes(profile, node, environment, stamp)):
        return

    apt.packages(name="Ensure the JRE and unzip are installed", packages=[settings.java_package, "unzip"])
    service_account("keycloak", home="/var/lib/keycloak")
    files.put(
        name=f"Ensure {archive.name} is on the host",
        src=str(archive),
        dest=where["archive"],
        mode="644",
        create_remote_dir=True,
    )
    unpacked = server.shell(
        name=f"Ensure the distribution is unpacked in {where['dist']}",
        commands=[
            f"unzip -q -o {quoted['archive']} -d {INSTALL_ROOT} && chown -R keycloak:keycloak {quoted['dist']} "
            f"&& chmod 700 {shlex.quote(where['dist'] + '/data')}"
        ],
        _if=lambda: host.get_fact(File, path=where["kc"]) is None,
    )
    config = files.template(
        name="Ensure keycloak.conf is rendered",
        src=str(TEMPLATES / "keycloak.conf.j2"),
        dest=where["config"],
        user="keycloak",
        group="keycloak",
        mode="640",
        jinja_env_kwargs=jinja_env_kwargs(),
        **data,
    )
    realm_file = files.put(
        name=f"Ensure the {settings.realm} realm is ready for import",
        src=StringIO(realm(profile)),
        dest=where["realm"],
        user="keycloak",
        group="keycloak",
        mode="640",
    )
    secrets = secret_file(
        name=f"Ensure {ENV_FILE} holds the database and admin credentials",
        path=ENV_FILE,
        secret=environment,
        mode="640",
        group="keycloak",
    )

    build = server.shell(
        name="Ensure the distribution is built for its build options (kc.sh build)",
        commands=[f"runuser -u keycloak -- {quoted['kc']} build && echo {stamp.strip()} > {quoted['build_stamp']}"],
        _if=lambda: host.get_fact(Sha256File, path=where["build_stamp"]) != hashlib.sha256(stamp.encode()).hexdigest(),
    )
    link = files.link(name=f"Ensure {HOME_LINK} is this version", path=HOME_LINK, target=where["dist"])
    unit = files.template(
        name=f"Ensure {UNIT} is rendered",
        src=str(TEMPLATES / "keycloak.service.j2"),
        dest=UNIT,
        mode="644",
        jinja_env_kwargs=jinja_env_kwargs(),
        **data,
    )
    ready = f"curl -fsS --max-time 2 http://{node.address}:{settings.management_port}/health/ready | grep -q UP"
    service_running(
        "keycloak",
        changed=[unpacked, config, realm_file, secrets, build, link, unit],
        unit=unit,
        ready=ready,
        seconds=240,
    )
