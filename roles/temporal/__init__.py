"""roles/temporal: the Temporal service on the data hosts (dev mode: the CLI's embedded server on SQLite)."""

#: Host groups this role is applied to.
APPLIES_TO = ("data",)
