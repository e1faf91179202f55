"""Errors meant for users: one line, naming the file / tag and what to do.

The CLI prints ``str(error)`` without a traceback and exits with :data:`EXIT_USAGE`.
"""

from __future__ import annotations

from pathlib import Path

#: Exit code for user mistakes (bad input, refused operation).
EXIT_USAGE = 2
#: The advice for every file that was cut short (:class:`IncompleteFileError`).
COPY_AGAIN = "copy it again from its source"


class UserError(Exception):
    """A problem with the user's input; the message says what to do."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        #: the message without the path (``--json`` prints both apart)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class InputFileError(UserError):
    """A file is missing, unreadable or not what it should be."""


class IncompleteFileError(InputFileError):
    """A file ends before its data does (cut short while copying or downloading): the
    message names where it ends and says to copy it again from its source."""


class ReferenceMismatchError(UserError):
    """A SEG and a reference series (or two grids) do not belong together."""


class OverlapError(UserError):
    """Segments share voxels, so a LABELMAP cannot represent them."""


class OutputExistsError(UserError):
    """Refusing to overwrite an existing output."""
