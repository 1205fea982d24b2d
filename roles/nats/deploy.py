"""Deploy of roles/nats: the pinned nats-server, its account, JetStream store, config, auth and unit."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import files

from filters.jinja import jinja_env_kwargs
from gpuaas.context import current_node, current_profile
from gpuaas.operations import install_pinned, secret_file, service_account, service_running
from gpuaas.probe import in_place
from roles.nats.config import (
    AUTH,
    CONFIG,
    PROGRAM_LINK,
    UNIT,
    context,
    monitor_url,
    profile_auth_file,
    settings_for,
    templates,
)
from roles.nats.state import probes


@deploy("NATS JetStream")
def nats() -> None:
    profile, node = current_profile(), current_node()
    settings = settings_for(profile)
    # The pin is verified on the controller first: a mismatch stops the deploy before any operation.
    if in_place("NATS", probes(profile, node)):
        return
    linked = install_pinned(profile, settings.artifact, PROGRAM_LINK)
    service_account("nats", home="/var/lib/nats", private_dirs=(settings.store_dir,))

    data = context(profile, node)
    paths = templates()
    config = files.template(
        name=f"Ensure {CONFIG} is rendered",
        src=paths[CONFIG],
        dest=CONFIG,
        user="root",
        group="nats",
        mode="640",
        jinja_env_kwargs=jinja_env_kwargs(),
        **data,
    )
    auth = secret_file(
        name=f"Ensure {AUTH} holds the credentials",
        path=AUTH,
        secret=profile_auth_file(profile),
        mode="640",
        group="nats",
    )
    unit = files.template(
        name=f"Ensure {UNIT} is rendered",
        src=paths[UNIT],
        dest=UNIT,
        mode="644",
        jinja_env_kwargs=jinja_env_kwargs(),
        **data,
    )

    healthz = monitor_url(settings, "/healthz")
    service_running(
        "nats", changed=[config, auth, unit, linked], unit=unit, ready=f"curl -fsS --max-time 2 {healthz} >/dev/null"
    )
