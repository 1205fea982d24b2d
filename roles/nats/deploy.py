"""Deploy of roles/nats: the pinned nats-server, its account, JetStream store, config, auth and unit."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from filters.jinja import jinja_env_kwargs
from gpuaas.context import current_node, current_profile
from gpuaas.operations import install_pinned, secret_file, service_account, wait_until_ready
from gpuaas.secrets import resolve
from roles.nats.config import AUTH, CONFIG, PROGRAM_LINK, UNIT, auth_file, context, settings_for, templates


@deploy("NATS JetStream")
def nats() -> None:
    profile, node = current_profile(), current_node()
    settings = settings_for(profile)
    # Verified on the controller before any operation is queued: a mismatch stops the deploy here.
    linked = install_pinned(profile, settings.artifact, PROGRAM_LINK)
    password = resolve(profile, settings.password)
    service_account("nats", home="/var/lib/nats", private_dirs=(settings.store_dir,))

    data = context(profile, node)
    paths = templates()
    config = files.template(name=f"Ensure {CONFIG} is rendered", src=paths[CONFIG], dest=CONFIG, user="root",
                            group="nats", mode="640", jinja_env_kwargs=jinja_env_kwargs(), **data)  # fmt: skip
    auth = secret_file(name=f"Ensure {AUTH} holds the credentials", path=AUTH,
                       secret=auth_file(settings, password), mode="640", group="nats")  # fmt: skip
    unit = files.template(name=f"Ensure {UNIT} is rendered", src=paths[UNIT], dest=UNIT,
                          jinja_env_kwargs=jinja_env_kwargs(), **data)  # fmt: skip

    systemd.daemon_reload(name="Ensure systemd knows the nats unit", _if=unit.did_change)
    systemd.service(name="Ensure nats is running and enabled", service="nats", running=True, enabled=True)
    restart = systemd.service(name="Ensure nats runs with its configuration", service="nats", restarted=True,
                              _if=any_changed(config, auth, unit, linked))  # fmt: skip
    healthz = f"http://{node.address}:{settings.monitor_port}/healthz"
    wait_until_ready("nats", f"curl -fsS --max-time 2 {healthz} >/dev/null", after=restart)
