"""The whole desired state of roles/openbao as probes, checked in one round trip (see gpuaas.probe)."""

from __future__ import annotations

from gpuaas.operations import pinned_program_probe
from gpuaas.probe import Probe, account_probe, owned_files_probe, services_probe
from gpuaas.profile import Host, Profile
from gpuaas.secrets import resolve
from roles.openbao.config import (
    CONFIG,
    PROGRAM_LINK,
    TLS_CERT,
    TLS_KEY,
    UNIT,
    api_url,
    raft_dir,
    rendered_files,
    settings_for,
    subject_alt_names,
    trusted_ca,
)


def probes(profile: Profile, node: Host) -> list[Probe]:
    settings, rendered = settings_for(profile), rendered_files(profile, node)
    files = {CONFIG: (rendered[CONFIG], "640", "root", "openbao"), UNIT: (rendered[UNIT], "644", "root", "root")}
    checks = [
        pinned_program_probe(profile, settings.artifact, PROGRAM_LINK),
        account_probe("openbao", (settings.data_dir, raft_dir(settings))),
        Probe("config-dir", "stat -c '%a %U %G' /etc/openbao", "750 root openbao"),
    ]
    if settings.tls_cert is None:
        names = ", ".join(sorted(subject_alt_names(node)))
        # The names and the expiry in one openssl run (each run costs tens of milliseconds).
        certificate = f"openssl x509 -in {TLS_CERT} -noout -ext subjectAltName -checkend {settings.renew_days * 86400}"
        checks.append(
            Probe("certificate", certificate, f"X509v3 Subject Alternative Name: {names} Certificate will not expire")
        )
    else:
        files[TLS_CERT] = (resolve(profile, settings.tls_cert).reveal(), "644", "root", "root")
        files[TLS_KEY] = (resolve(profile, settings.tls_key).reveal(), "640", "root", "openbao")
    return checks + [
        owned_files_probe("files", files),
        services_probe(running=["openbao"], enabled=["openbao"]),
        # The API's seal status (curl answers in a fraction of `bao status`'s start-up time).
        Probe(
            "unsealed",
            f"curl -sS --max-time 5 --cacert {trusted_ca(settings)} {api_url(settings, node)}"
            '/v1/sys/seal-status | grep -o \'"initialized":[a-z]*,"sealed":[a-z]*\'',
            '"initialized":true,"sealed":false',
        ),
    ]
