-- The demo's data, with fixed identifiers and dates: every load and every reset gives the same rows.
INSERT INTO tenants (id, slug, name) VALUES
    (1, 'acme', 'Acme Research'),
    (2, 'globex', 'Globex Labs');

INSERT INTO personas (id, username, persona, tenant_id, display) VALUES
    (1, 'uma', 'user', 1, 'Uma User'),
    (2, 'tariq', 'tenant_admin', 1, 'Tariq Tenant-Admin'),
    (3, 'paula', 'platform_admin', NULL, 'Paula Platform-Admin'),
    (4, 'otto', 'ops', NULL, 'Otto Ops');

INSERT INTO projects (id, tenant_id, slug, name) VALUES
    (1, 1, 'vision', 'Vision models'),
    (2, 1, 'llm-eval', 'LLM evaluation'),
    (3, 2, 'genomics', 'Genomics pipeline');

INSERT INTO app_catalogue (id, slug, name, kind, image) VALUES
    (1, 'notebook', 'Jupyter notebook', 'notebook', 'quay.io/jupyter/pytorch-notebook:cuda12-2024-12-02'),
    (2, 'slurm', 'Slurm reference controller', 'slurm', 'ghcr.io/gpuaas/slurm-controller:24.05'),
    (3, 'rke2-cluster', 'RKE2 cluster', 'rke2', 'docker.io/rancher/rke2-runtime:v1.31.6-rke2r1'),
    (4, 'oci-app', 'OCI app', 'oci', 'docker.io/library/nginx:1.27');

INSERT INTO resources (id, project_id, app_id, name, gpus, state) VALUES
    (1, 1, 1, 'vision-notebook', 1, 'running'),
    (2, 2, 3, 'eval-cluster', 2, 'running'),
    (3, 3, 2, 'genomics-slurm', 1, 'stopped'),
    (4, 1, 4, 'vision-demo-app', 0, 'running');

INSERT INTO balances (tenant_id, credit, used) VALUES
    (1, 500000, 73500),
    (2, 250000, 21000);

INSERT INTO usage_records (id, resource_id, day, gpu_hours, cost) VALUES
    (1, 1, '2026-11-30', 8.00, 24000),
    (2, 2, '2026-11-30', 12.50, 37500),
    (3, 1, '2026-12-01', 4.00, 12000),
    (4, 3, '2026-12-01', 7.00, 21000);
