"""roles/keycloak: Keycloak from the official distribution on OpenJDK, with PostgreSQL, on the data hosts."""

#: Host groups this role is applied to.
APPLIES_TO = ("data",)
