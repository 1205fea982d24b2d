"""Deploy of roles/openbao: the pinned bao, its account, TLS, raft storage, config, unit, init and unseal."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files

from filters.jinja import jinja_env_kwargs
from gpuaas.context import current_node, current_profile
from gpuaas.operations import install_pinned, secret_file, service_account, service_running
from gpuaas.probe import in_place
from gpuaas.secrets import resolve
from roles.openbao.config import (
    CONFIG,
    PROGRAM_LINK,
    TEMPLATES,
    TLS_CERT,
    TLS_KEY,
    UNIT,
    client,
    context,
    raft_dir,
    settings_for,
    subject_alt_names,
)
from roles.openbao.facts import BaoStatus
from roles.openbao.operations import host_certificate, initialized_and_unsealed
from roles.openbao.state import probes


@deploy("OpenBao")
def openbao() -> None:
    profile, node = current_profile(), current_node()
    settings = settings_for(profile)
    if in_place("OpenBao", probes(profile, node)):
        return
    linked = install_pinned(profile, settings.artifact, PROGRAM_LINK)
    service_account("openbao", home=settings.data_dir, private_dirs=(settings.data_dir, raft_dir(settings)))

    files.directory(
        name="Ensure /etc/openbao is readable by openbao", path="/etc/openbao", user="root", group="openbao", mode="750"
    )
    if settings.tls_cert is None:
        certificate = [
            host_certificate(
                name="Ensure the OpenBao TLS certificate is current",
                common_name=node.name,
                names=subject_alt_names(node),
                days=settings.tls_days,
                renew_days=settings.renew_days,
            )
        ]
    else:
        certificate = [
            secret_file(
                name=f"Ensure {TLS_CERT} is the profile's",
                path=TLS_CERT,
                secret=resolve(profile, settings.tls_cert),
                mode="644",
            ),
            secret_file(
                name=f"Ensure {TLS_KEY} is the profile's",
                path=TLS_KEY,
                secret=resolve(profile, settings.tls_key),
                mode="640",
                group="openbao",
            ),
        ]
    data = context(profile, node)
    config = files.template(
        name=f"Ensure {CONFIG} is rendered",
        src=str(TEMPLATES / "openbao.hcl.j2"),
        dest=CONFIG,
        user="root",
        group="openbao",
        mode="640",
        jinja_env_kwargs=jinja_env_kwargs(),
        **data,
    )
    unit = files.template(
        name=f"Ensure {UNIT} is rendered",
        src=str(TEMPLATES / "openbao.service.j2"),
        dest=UNIT,
        mode="644",
        jinja_env_kwargs=jinja_env_kwargs(),
        **data,
    )
    # Sealed (exit 2) is an answer: the server is up and waits for its keys.
    ready = f"{client(settings, node, 'status')} >/dev/null 2>&1; [ $? -ne 1 ]"
    restart = service_running("openbao", changed=[*certificate, config, unit, linked], unit=unit, ready=ready)

    status = host.get_fact(BaoStatus, client_command=client(settings, node, "status"))
    settled = bool(status and status["initialized"] and not status["sealed"])
    # A restart seals the server, so unseal follows any restart even when it was unsealed before.
    initialized_and_unsealed(
        name="Ensure OpenBao is initialised and unsealed",
        profile=profile,
        node=node,
        settings=settings,
        _if=lambda: not settled or restart.did_change(),
    )
