-- The example baseline's own small schema (the product's migrations replace this file: see README.md).
CREATE TABLE tenants (
    id          integer PRIMARY KEY,
    slug        text NOT NULL UNIQUE,
    name        text NOT NULL
);

CREATE TABLE personas (
    id          integer PRIMARY KEY,
    username    text NOT NULL UNIQUE,
    persona     text NOT NULL CHECK (persona IN ('user', 'tenant_admin', 'platform_admin', 'ops')),
    tenant_id   integer REFERENCES tenants (id),
    display     text NOT NULL
);

CREATE TABLE projects (
    id          integer PRIMARY KEY,
    tenant_id   integer NOT NULL REFERENCES tenants (id),
    slug        text NOT NULL,
    name        text NOT NULL,
    UNIQUE (tenant_id, slug)
);

CREATE TABLE app_catalogue (
    id          integer PRIMARY KEY,
    slug        text NOT NULL UNIQUE,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('notebook', 'slurm', 'rke2', 'oci')),
    image       text NOT NULL,
    launchable  boolean NOT NULL DEFAULT true
);

CREATE TABLE resources (
    id          integer PRIMARY KEY,
    project_id  integer NOT NULL REFERENCES projects (id),
    app_id      integer NOT NULL REFERENCES app_catalogue (id),
    name        text NOT NULL,
    gpus        integer NOT NULL CHECK (gpus >= 0),
    state       text NOT NULL
);

-- Balances in cents, so that sums are exact; usage moves them.
CREATE TABLE balances (
    tenant_id   integer PRIMARY KEY REFERENCES tenants (id),
    credit      bigint NOT NULL,
    used        bigint NOT NULL DEFAULT 0
);

CREATE TABLE usage_records (
    id          integer PRIMARY KEY,
    resource_id integer NOT NULL REFERENCES resources (id),
    day         date NOT NULL,
    gpu_hours   numeric(10, 2) NOT NULL,
    cost        bigint NOT NULL
);
