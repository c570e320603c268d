"""The exceptions elens raises on purpose. Each renders as one line that names where."""

from __future__ import annotations


class ElensError(Exception):
    """Base of every error elens raises on purpose; the CLI prints it and exits 2."""


class PolicyError(ElensError):
    """A policy defect, located: ``FILE:LINE: FIELD: MESSAGE``."""

    def __init__(self, file: str, line: int | None, field: str, message: str):
        self.file, self.line, self.field, self.message = file, line, field, message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field or '<root>'}: {self.message}"


class OptionsError(ElensError):
    """Raised by a component factory when its options are wrong.

    ``field`` is a dotted path inside the component's ``options``; the host turns
    this into a :class:`PolicyError` that names the policy file and line.
    """

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


class AuditError(ElensError):
    """The audit log could not be written; the request is stopped before delivery."""


class InputError(ElensError):
    """A request's input is unusable (empty prompt, unreadable image, unsafe path)."""
