"""roles/object_store: SeaweedFS (`weed`, S3 API) as the backup target where the profile enables it."""

#: Host groups this role is applied to (when `services.object_store.enabled`).
APPLIES_TO = ("data",)
