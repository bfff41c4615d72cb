"""Adapters: the outside world (Consul KV, Prometheus, git repositories, files on disk), each behind a few calls
that turn its failures into one clear FieldsyncError."""
