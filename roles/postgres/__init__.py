"""roles/postgres: Debian's PostgreSQL 15, tuned from host memory, with the platform's databases."""

#: Host groups this role is applied to.
APPLIES_TO = ("data",)
