"""Kade's one error vocabulary.

The library raises these; exactly one place maps them to CLI exit codes
(kade.cli.errmap) and, later, one place maps them to HTTP status (kade.api).
Messages are lower case, say what failed and quote the offending value.
"""


class KadeError(Exception):
    """Base of every error Kade raises on purpose."""


class NotFound(KadeError):
    pass


class AlreadyExists(KadeError):
    pass


class Conflict(KadeError):
    pass


class InvalidArgument(KadeError):
    pass


class FailedPrecondition(KadeError):
    pass


class Unavailable(KadeError):
    pass


class NotImplementedYet(KadeError):
    pass


class Forbidden(KadeError):
    pass


class CommandNotFound(NotFound):
    """The container's command does not exist (docker exits 127)."""


class CommandNotInvocable(Forbidden):
    """The container's command exists but cannot be run (docker exits 126)."""
