"""Deploy of roles/redis: Debian's redis-server, its configuration include, the password and a restart."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd
from pyinfra.operations.util import any_changed

from filters.jinja import jinja_env_kwargs
from gpuaas.context import current_node, current_profile
from gpuaas.operations import secret_file, wait_until_ready
from gpuaas.secrets import resolve
from roles.redis.config import AUTH, CONFIG, INCLUDE_LINE, MAIN_CONFIG, auth_file, context, settings_for, templates


@deploy("Redis")
def redis() -> None:
    profile, node = current_profile(), current_node()
    settings = settings_for(profile)
    password = resolve(profile, settings.password)

    apt.packages(name="Ensure redis-server is installed", packages=["redis-server"], update=True, cache_time=3600)
    config = files.template(name=f"Ensure {CONFIG} is rendered", src=templates()[CONFIG], dest=CONFIG,
                            user="root", group="redis", mode="640", jinja_env_kwargs=jinja_env_kwargs(),
                            **context(profile, node))  # fmt: skip
    auth = secret_file(name=f"Ensure {AUTH} holds the password", path=AUTH, secret=auth_file(password),
                       mode="640", group="redis")  # fmt: skip
    included = files.line(name=f"Ensure {MAIN_CONFIG} includes {CONFIG}", path=MAIN_CONFIG,
                          line=f"^{INCLUDE_LINE}$", replace=INCLUDE_LINE)  # fmt: skip
    systemd.service(name="Ensure redis-server is running and enabled", service="redis-server", running=True,
                    enabled=True)  # fmt: skip
    restart = systemd.service(name="Ensure redis-server runs with its configuration", service="redis-server",
                              restarted=True, _if=any_changed(config, auth, included))  # fmt: skip
    # An unauthenticated PING answers NOAUTH once the server is up: readiness without the password.
    ping = f"redis-cli -h {node.address} -p {settings.port} ping 2>&1 | grep -qE 'PONG|NOAUTH'"
    wait_until_ready("redis-server", ping, after=restart)
