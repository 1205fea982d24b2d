"""roles/edge: the environment's public names in Cloudflare, planned against the live zone, then applied."""

#: Runs on the controller (pyinfra's @local): it talks to Cloudflare's API, not to a host.
APPLIES_TO = ("controller",)
