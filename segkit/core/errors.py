"""The one exception segkit raises for input or parameters it cannot use.

Every message names the thing that is wrong (file, column, parameter, rows), shows what was
found and says what was expected, e.g. ``cluster.k_min == 1, must be >= 2.``. The CLI turns
it into one line on stderr and exit code 2.
"""

from __future__ import annotations


class SegkitError(ValueError):
    """Input or parameters that segkit cannot use; the message says what to change."""


class TodoError(SegkitError):
    """A parameter left for the user to fill in (``segkit init --from`` writes it empty with
    a TODO, e.g. an exchange rate): the file is otherwise valid."""
