"""Pure rules: what a field file may hold, what Prometheus yields, the merge, the diff, the document, the guards.

Nothing here reads or writes the outside world; adapters do, and use cases join the two.
"""
