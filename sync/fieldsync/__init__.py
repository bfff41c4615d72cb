"""fieldsync: metadata field customizations kept in git, synced to Consul KV."""

__version__ = "0.1.0"
