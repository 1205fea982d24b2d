"""roles/common: the baseline every cluster and data host gets."""

#: Host groups this role is applied to.
APPLIES_TO = ("rke2_servers", "rke2_agents", "data")
