"""`fieldsync serve`, the scheduled sync as a long-running service (service.py says how it is put together)."""

from .options import ServeOptions
from .service import Service

__all__ = ["ServeOptions", "Service"]
