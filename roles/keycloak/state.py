"""Everything roles/keycloak keeps on a data host, declared once: the deploy converges it and the one-round-trip
check reads it back (see gpuaas.managed). OpenJDK, the pinned distribution unpacked and built for its
configuration (kc.sh build), the realm to import, the credentials, the unit."""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import File, Sha256File
from pyinfra.operations import server

from gpuaas import artifacts
from gpuaas.managed import (
    Account,
    Applied,
    Content,
    Directory,
    Item,
    Link,
    Packages,
    SecretFile,
    Service,
    Template,
    Upload,
)
from gpuaas.probe import Probe, sha1
from gpuaas.profile import Host, Profile
from gpuaas.secrets import resolve
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


@dataclass(eq=False)
class Unpacked:
    """The distribution unzipped under INSTALL_ROOT into its own versioned directory, owned by keycloak,
    its data directory private to it; once per version."""

    archive: str
    dist: str
    #: The distribution's kc.sh: there once the unzip went through.
    kc: str

    @property
    def name(self) -> str:
        return f"distribution {self.dist}"

    def probes(self) -> list[Probe]:
        return [Probe(self.name, f"test -f {shlex.quote(self.kc)} && echo unpacked || echo missing", "unpacked")]

    def apply(self, applied: Applied) -> OperationMeta:
        dist = shlex.quote(self.dist)
        return server.shell(
            name=f"Ensure the distribution is unpacked in {self.dist}",
            commands=[
                f"unzip -q -o {shlex.quote(self.archive)} -d {INSTALL_ROOT} && chown -R keycloak:keycloak {dist} "
                f"&& chmod 700 {shlex.quote(self.dist + '/data')}"
            ],
            _if=lambda: host.get_fact(File, path=self.kc) is None,
        )


@dataclass(eq=False)
class Built:
    """The distribution built for its build options (`kc.sh build`), and the stamp of the configuration
    it was built from beside it: a build is current only when the stamp matches."""

    kc: str
    stamp_path: str
    stamp: str

    @property
    def name(self) -> str:
        return f"build {self.stamp_path}"

    def probes(self) -> list[Probe]:
        return [Probe(self.name, f"sha1sum {shlex.quote(self.stamp_path)}", f"{sha1(self.stamp)} {self.stamp_path}")]

    def apply(self, applied: Applied) -> OperationMeta:
        digest = hashlib.sha256(self.stamp.encode()).hexdigest()
        return server.shell(
            name="Ensure the distribution is built for its build options (kc.sh build)",
            commands=[
                f"runuser -u keycloak -- {shlex.quote(self.kc)} build && echo {self.stamp.strip()} > "
                f"{shlex.quote(self.stamp_path)}"
            ],
            _if=lambda: host.get_fact(Sha256File, path=self.stamp_path) != digest,
        )


def desired(profile: Profile, node: Host) -> list[Item]:
    settings, where, data = settings_for(profile), paths(profile), context(profile, node)
    # Verified on the controller before any operation is queued: a mismatch stops the deploy here.
    pin = profile.artifacts[settings.artifact]
    archive = Upload(where["archive"], artifacts.verified(settings.artifact, pin), pin.sha256)
    unpacked = Unpacked(where["archive"], where["dist"], where["kc"])
    config = Template(
        where["config"], str(TEMPLATES / "keycloak.conf.j2"), data, mode="640", user="keycloak", group="keycloak"
    )
    realm_file = Content(
        where["realm"],
        realm(profile),
        mode="640",
        user="keycloak",
        group="keycloak",
        what=f"the {settings.realm} realm to import",
    )
    credentials = SecretFile(
        ENV_FILE,
        environment_file(
            settings, resolve(profile, database_password_ref(profile)), resolve(profile, settings.admin_password)
        ),
        mode="640",
        group="keycloak",
        what="the database and admin credentials",
    )
    built = Built(where["kc"], where["build_stamp"], build_stamp(config.content))
    link = Link(HOME_LINK, where["dist"])
    unit = Template(UNIT, str(TEMPLATES / "keycloak.service.j2"), data)
    ready = f"curl -fsS --max-time 2 http://{node.address}:{settings.management_port}/health/ready | grep -q UP"
    return [
        Packages((settings.java_package, "unzip")),
        Account("keycloak", home="/var/lib/keycloak"),
        archive,
        unpacked,
        Directory(f"{where['dist']}/data", "700", "keycloak", "keycloak"),
        config,
        realm_file,
        credentials,
        built,
        link,
        unit,
        Service(
            "keycloak",
            ready=ready,
            restart_on=(unpacked, config, realm_file, credentials, built, link, unit),
            unit_file=unit,
            seconds=240,
        ),
    ]
