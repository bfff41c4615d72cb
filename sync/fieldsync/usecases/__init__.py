"""Use cases, one module per command: each a function taking keyword-only arguments or one options record and
returning a result from fieldsync.model. They never print; the command line renders what they return."""
