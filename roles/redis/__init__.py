"""roles/redis: Debian's redis-server with auth and persistence, on the data hosts."""

#: Host groups this role is applied to.
APPLIES_TO = ("data",)
