"""Errors the CLI reports as one clear line, with the exit code each stands for."""


class FieldsyncError(Exception):
    """An error the operator can act on; nothing was written."""

    exit_code: int = 1


class UsageError(FieldsyncError):
    """Bad arguments: a path, repository or revision that does not exist."""

    exit_code: int = 2


class Terminated(BaseException):
    """SIGTERM (how systemd, Kubernetes and CI runners stop a job): unwinds like Ctrl-C, so locks are released."""

    exit_code: int = 143


class Refused(FieldsyncError):
    """Refused to protect data (rollback, drift)."""

    exit_code: int = 3
