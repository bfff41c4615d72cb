"""`python -m fieldsync`."""

from .cli import main

main()
