"""roles/rke2: RKE2 servers and agents from pinned artifacts, joined into one cluster."""

#: Host groups this role is applied to.
APPLIES_TO = ("rke2_servers", "rke2_agents")
