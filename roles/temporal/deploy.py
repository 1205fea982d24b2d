"""Deploy of roles/temporal: the pinned temporal CLI running its embedded server (dev mode)."""

from __future__ import annotations

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.operations import files

from filters.jinja import jinja_env_kwargs
from gpuaas.context import current_node, current_profile
from gpuaas.operations import install_pinned, service_account, service_running
from roles.temporal.config import PROGRAM_LINK, TEMPLATES, UNIT, context, data_dir, health_command, settings_for


@deploy("Temporal")
def temporal() -> None:
    profile, node = current_profile(), current_node()
    settings = settings_for(profile)
    if settings.mode != "dev":
        # Said on every run, so the gap is never silent; the other data services still deploy.
        logger.warning(
            f"{host.print_prefix}services.temporal.mode is {settings.mode}: Temporal is not deployed; this "
            "collection runs Temporal in dev mode only so far (temporal-server on PostgreSQL is not built yet)"
        )
        return
    linked = install_pinned(profile, settings.artifact, PROGRAM_LINK)
    service_account("temporal", home=data_dir(settings), private_dirs=(data_dir(settings),))
    unit = files.template(name=f"Ensure {UNIT} is rendered", src=str(TEMPLATES / "temporal.service.j2"), dest=UNIT,
                          jinja_env_kwargs=jinja_env_kwargs(), **context(profile, node))  # fmt: skip
    ready = f"{health_command(settings, str(node.address))} 2>/dev/null | grep -q SERVING"
    service_running("temporal", changed=[unit, linked], unit=unit, ready=ready, seconds=60)
