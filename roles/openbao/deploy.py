"""Deploy of roles/openbao: the pinned bao, its account, TLS, raft storage, config, unit, init and unseal."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta

from gpuaas.context import current_node, current_profile
from gpuaas.managed import Applied, Service, converge
from gpuaas.profile import Host, Profile
from roles.openbao.config import client, settings_for
from roles.openbao.facts import BaoStatus
from roles.openbao.operations import initialized_and_unsealed
from roles.openbao.state import desired


def unseal(profile: Profile, node: Host, restart: OperationMeta) -> None:
    """Initialise the server when it is not and unseal it when it is sealed or `restart` restarted it."""
    settings = settings_for(profile)
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


@deploy("OpenBao")
def openbao() -> None:
    profile, node = current_profile(), current_node()
    items = desired(profile, node)
    (server,) = (item for item in items if isinstance(item, Service))

    def steps(applied: Applied) -> None:
        unseal(profile, node, applied[server])

    converge("OpenBao", items, steps)
