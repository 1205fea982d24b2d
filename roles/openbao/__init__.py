"""roles/openbao: OpenBao on integrated raft storage with TLS, initialised and unsealed, on the data hosts."""

#: Host groups this role is applied to.
APPLIES_TO = ("data",)
