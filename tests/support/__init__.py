"""Helpers shared by the tests: git repositories, Consul access, and running fieldsync as operators do."""
