"""Backup sets in the profile's S3-compatible bucket: the store, the sets and their manifests, retention."""
