"""Everything roles/openbao keeps on a data host, declared once: the deploy converges it and the one-round-trip
check reads it back (see gpuaas.managed). Initialising and unsealing are the deploy's own steps; the
server's seal status is read back here with the items."""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra.api.operation import OperationMeta

from gpuaas.managed import Account, Applied, Checked, Directory, Item, PinnedProgram, SecretFile, Service, Template
from gpuaas.probe import Probe
from gpuaas.profile import Host, Profile
from gpuaas.secrets import resolve
from roles.openbao.config import (
    CONFIG,
    PROGRAM_LINK,
    TEMPLATES,
    TLS_CERT,
    TLS_KEY,
    UNIT,
    api_url,
    client,
    context,
    raft_dir,
    settings_for,
    subject_alt_names,
    trusted_ca,
)
from roles.openbao.operations import host_certificate
from roles.openbao.settings import OpenBaoSettings

CONFIG_DIR = "/etc/openbao"


@dataclass(eq=False)
class HostCertificate:
    """The server certificate at TLS_CERT for `names`, issued by the host's own CA and reissued before
    it expires (see roles.openbao.operations.host_certificate)."""

    common_name: str
    names: tuple[str, ...]
    days: int
    renew_days: int

    @property
    def name(self) -> str:
        return f"certificate {TLS_CERT}"

    def probes(self) -> list[Probe]:
        names = ", ".join(sorted(self.names))
        # The names and the expiry in one openssl run (each run costs tens of milliseconds).
        command = f"openssl x509 -in {TLS_CERT} -noout -ext subjectAltName -checkend {self.renew_days * 86400}"
        return [Probe(self.name, command, f"X509v3 Subject Alternative Name: {names} Certificate will not expire")]

    def apply(self, applied: Applied) -> OperationMeta:
        return host_certificate(
            name="Ensure the OpenBao TLS certificate is current",
            common_name=self.common_name,
            names=list(self.names),
            days=self.days,
            renew_days=self.renew_days,
        )


def certificate(profile: Profile, node: Host, settings: OpenBaoSettings) -> list[Item]:
    """The host's own certificate, or the profile's certificate and key when it names them."""
    if settings.tls_cert is None:
        return [HostCertificate(node.name, tuple(subject_alt_names(node)), settings.tls_days, settings.renew_days)]
    return [
        SecretFile(TLS_CERT, resolve(profile, settings.tls_cert), mode="644", what="the profile's certificate"),
        SecretFile(TLS_KEY, resolve(profile, settings.tls_key), mode="640", group="openbao", what="the profile's key"),
    ]


def unsealed(settings: OpenBaoSettings, node: Host) -> Checked:
    """The server initialised and unsealed, as its API reports it (curl answers in a fraction of
    `bao status`'s start-up time)."""
    return Checked(
        "openbao unsealed",
        f"curl -sS --max-time 5 --cacert {trusted_ca(settings)} {api_url(settings, node)}"
        '/v1/sys/seal-status | grep -o \'"initialized":[a-z]*,"sealed":[a-z]*\'',
        '"initialized":true,"sealed":false',
    )


def desired(profile: Profile, node: Host) -> list[Item]:
    """The pinned bao, its account and raft storage, /etc/openbao, the TLS certificate, config and unit,
    the server running on them (restarted when any of them changed), and the server unsealed."""
    settings = settings_for(profile)
    data = context(profile, node)
    program = PinnedProgram(profile, settings.artifact, PROGRAM_LINK)
    tls = certificate(profile, node, settings)
    config = Template(CONFIG, str(TEMPLATES / "openbao.hcl.j2"), data, mode="640", group="openbao")
    unit = Template(UNIT, str(TEMPLATES / "openbao.service.j2"), data, mode="644")
    # Sealed (exit 2) is an answer: the server is up and waits for its keys.
    ready = f"{client(settings, node, 'status')} >/dev/null 2>&1; [ $? -ne 1 ]"
    return [
        program,
        Account("openbao", home=settings.data_dir, private_dirs=(settings.data_dir, raft_dir(settings))),
        Directory(CONFIG_DIR, mode="750", group="openbao"),
        *tls,
        config,
        unit,
        Service("openbao", ready=ready, restart_on=(*tls, config, unit, program), unit_file=unit),
        unsealed(settings, node),
    ]
