"""Errors a command can meet: the caller of the engine broke a rule, state is unchanged."""

from __future__ import annotations


class CommandRejected(Exception):
    """A command that does not fit the current state; nothing was changed.

    ``error_id`` is stable, for API clients to branch on; ``state`` names the
    current state of the entity when that explains the refusal.
    """

    def __init__(self, error_id: str, message: str, state: str | None = None) -> None:
        super().__init__(message)
        self.error_id = error_id
        self.message = message
        self.state = state

    def __reduce__(self) -> tuple[type[CommandRejected], tuple[str, str, str | None]]:
        return (type(self), (self.error_id, self.message, self.state))  # copy and pickle
