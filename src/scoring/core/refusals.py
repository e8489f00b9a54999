"""Refusals of bad input that carry a code from their module's table of refusals.

A module that refuses input in several ways keeps a public table, code -> what is refused
(``REFUSALS`` of :mod:`scoring.models.scorecard_bins`, of :mod:`scoring.decision.whatif`, ...),
and raises a subclass of :class:`CodedError` naming that table in ``CODES``: every raise names
one code of it, so the table lists every way the module refuses input, and a test can fire each
one and see that the right one fired.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class CodedError(ValueError):
    """A ``ValueError`` whose ``code`` is one of its class's ``CODES``; the message is unchanged."""

    CODES: ClassVar[Mapping[str, str]] = {}

    def __init__(self, message: str, code: str) -> None:
        if code not in self.CODES:
            raise AssertionError(
                f"{type(self).__name__}: refusal code {code!r} is not in its table; expected one of "
                f"{sorted(self.CODES)}"
            )
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        # the code travels with the message (a worker process's error, unpickled)
        return (type(self), (str(self), self.code))
