"""roles/redis: what it renders and reads back, computed without a host."""

from __future__ import annotations

from gpuaas.profile import load_profile
from gpuaas.secrets import Secret
from roles.redis.config import CONFIG, auth_file, rendered_files
from roles.redis.facts import RedisInfo


def test_config_binds_the_profile_address_and_keeps_the_password_out():
    staging = load_profile("staging")
    conf = rendered_files(staging, staging.host("stg-server-1"))[CONFIG]
    assert "bind 10.20.0.10 127.0.0.1\n" in conf and "port 6379\n" in conf
    assert "appendonly yes\n" in conf and "maxmemory-policy noeviction\n" in conf
    assert "include /etc/redis/gpuaas-auth.conf" in conf and "requirepass" not in conf


def test_auth_file_is_a_secret():
    auth = auth_file(Secret("redis_password", "Kq7-x"))
    assert "Kq7" not in repr(auth) and auth.reveal() == 'requirepass "Kq7-x"\n'


def test_info_fact_parses_and_keeps_the_password_off_the_command_line():
    info = RedisInfo().process(["# Server", "redis_version:7.0.15", "redis_mode:standalone", ""])
    assert info == {"redis_version": "7.0.15", "redis_mode": "standalone"}
    assert RedisInfo().process(["NOAUTH Authentication required."]) is None
    assert "REDISCLI_AUTH=" in RedisInfo().command(6379, "/etc/redis/gpuaas-auth.conf")
