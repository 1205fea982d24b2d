"""roles/nats: NATS with JetStream, from the pinned nats-server artifact, on the data hosts."""

#: Host groups this role is applied to.
APPLIES_TO = ("data",)
