"""Cloudflare Origin CA certificates on the hosts that terminate TLS: the key is made on the host and
never leaves it; a CSR goes to Cloudflare; the certificate comes back. Renewed `renew_days` before
expiry or when the names change; revoked on request."""

from __future__ import annotations

import shlex
from io import StringIO

from cloudflare import Cloudflare
from cloudflare.types.origin_ca_certificates import OriginCACertificate
from pyinfra import host, logger
from pyinfra.api import FunctionCommand, StringCommand, operation
from pyinfra.facts.files import File

from gpuaas.facts import CertificateNames
from gpuaas.profile import OriginCertificates, Profile
from roles.edge.cloudflare_api import EdgeError, UnknownOutcome, api_errors, client, send_once, writer, zone_id

TLS_DIR = "/etc/gpuaas/tls"
KEY = f"{TLS_DIR}/origin.key"
CERTIFICATE = f"{TLS_DIR}/origin.crt"
CERTIFICATE_ID = f"{TLS_DIR}/origin.id"
KEY_COMMANDS = {
    "ecc": "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256",
    "rsa": "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048",
}


def hostnames(profile: Profile, settings: OriginCertificates) -> list[str]:
    return sorted(settings.hostnames or {str(record.name) for record in profile.dns.records})


@operation(is_idempotent=False)
def origin_certificate(profile: Profile, settings: OriginCertificates):
    """
    Keep an Origin CA certificate for the environment's names at /etc/gpuaas/tls/origin.crt, its key
    (0600, made here, never sent) at origin.key. A new one is requested when there is none, when the
    names differ, or when it expires within `renew_days`.

    + profile: the environment's profile
    + settings: the profile's dns.origin_certificates
    """
    names = hostnames(profile, settings)
    current = host.get_fact(CertificateNames, path=CERTIFICATE, days=settings.renew_days)
    if current and current["valid"] and current["names"] == sorted(f"DNS:{name}" for name in names):
        host.noop(f"{CERTIFICATE} covers {', '.join(names)}")
        return
    if host.get_fact(File, path=KEY) is None:
        yield f"mkdir -p -m 755 {TLS_DIR} && (umask 077 && {KEY_COMMANDS[settings.key_type]} -out {KEY})"
    yield FunctionCommand(_request, (profile, settings, names), {})


# pyinfra passes `state` and `host` to a callback only when its parameters have exactly these names.
def _request(state, host, profile: Profile, settings: OriginCertificates, names: list[str]) -> bool:
    """Make a CSR from the host's key, have Cloudflare sign it, install the certificate and its id."""
    connector = {"_sudo": bool(host.data.get("_sudo"))}
    subject = shlex.quote(f"/CN={names[0]}")
    ok, output = host.run_shell_command(
        StringCommand(
            f"openssl req -new -key {KEY} -subj {subject} -addext "
            f"{shlex.quote('subjectAltName=' + ','.join('DNS:' + n for n in names))}"
        ),
        print_output=False,
        print_input=False,
        **connector,
    )
    if not ok:
        host.log_styled(f"cannot make a CSR from {KEY}", fg="red", log_func=logger.error)
        return False
    try:
        issued = issue_certificate(client(profile), profile, settings, output.stdout + "\n", names)
    except EdgeError as error:
        host.log_styled(str(error), fg="red", log_func=logger.error)
        return False
    for path, text in ((CERTIFICATE, issued.certificate), (CERTIFICATE_ID, issued.id + "\n")):
        if not host.put_file(StringIO(text), path, **connector):
            return False
    host.run_shell_command(StringCommand(f"chmod 644 {CERTIFICATE} {CERTIFICATE_ID}"), **connector)
    logger.info(
        f"{host.print_prefix}Origin CA certificate {issued.id} for {', '.join(names)}, expires {issued.expires_on}"
    )
    return True


def issue_certificate(
    api: Cloudflare, profile: Profile, settings: OriginCertificates, csr: str, names: list[str]
) -> OriginCACertificate:
    """Have Origin CA sign `csr`, asked once. When the answer is lost (5xx, time-out), the zone's
    certificates are read back: one issued for this CSR is the answer; none means not issued."""
    doing = "requesting an Origin CA certificate"
    try:
        return send_once(
            profile,
            doing,
            lambda: writer(api).origin_ca_certificates.create(
                csr=csr,
                hostnames=names,
                request_type=f"origin-{settings.key_type}",
                requested_validity=settings.validity_days,
            ),
        )
    except UnknownOutcome as lost:
        where = f"Cloudflare, zone {profile.dns.zone}, {doing}: {lost.reason}"
        zone = zone_id(api, profile)
        with api_errors(profile, "listing the Origin CA certificates"):
            found = [
                c
                for c in api.origin_ca_certificates.list(zone_id=zone)
                if (c.csr or "").strip() == csr.strip() and c.certificate
            ]
        if not found:
            raise EdgeError(
                f"{where}; the zone's certificates read back hold none for this request: not issued; "
                "a new run requests it again"
            ) from None
        logger.warning(f"{where}, but the zone's certificates read back hold {found[0].id} for this request: issued")
        return found[0]


@operation(is_idempotent=False)
def revoked_origin_certificate(profile: Profile):
    """
    Revoke this host's Origin CA certificate at Cloudflare and remove it and its key from the host.

    + profile: the environment's profile
    """
    if host.get_fact(File, path=CERTIFICATE_ID) is None:
        host.noop("no Origin CA certificate here")
        return
    yield FunctionCommand(_revoke, (profile,), {})
    yield f"rm -f {CERTIFICATE} {CERTIFICATE_ID} {KEY}"


def _revoke(state, host, profile: Profile) -> bool:
    ok, output = host.run_shell_command(StringCommand(f"cat {CERTIFICATE_ID}"), print_output=False)
    try:
        revoke_certificate(client(profile), profile, output.stdout.strip())
    except EdgeError as error:
        host.log_styled(str(error), fg="red", log_func=logger.error)
        return False
    return ok


def revoke_certificate(api: Cloudflare, profile: Profile, certificate_id: str) -> None:
    """Revoke the certificate, asked once; when the answer is lost, the certificate read back says
    whether it was revoked."""
    doing = f"revoking the Origin CA certificate {certificate_id}"
    zone_id(api, profile)
    try:
        send_once(profile, doing, lambda: writer(api).origin_ca_certificates.delete(certificate_id))
    except UnknownOutcome as lost:
        where = f"Cloudflare, zone {profile.dns.zone}, {doing}: {lost.reason}"
        with api_errors(profile, f"reading the Origin CA certificate {certificate_id}"):
            current = api.origin_ca_certificates.get(certificate_id)
        if not getattr(current, "revoked_at", None):
            raise EdgeError(f"{where}; the certificate read back is not revoked: not applied") from None
        logger.warning(f"{where}, but the certificate read back is revoked: applied")
