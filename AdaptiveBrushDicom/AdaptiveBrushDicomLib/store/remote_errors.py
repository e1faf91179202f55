"""The errors of talking to a PACS, over DICOMweb or DIMSE: one line naming the URL or the peer.

All are :class:`~AdaptiveBrushDicomLib.errors.UserError` subclasses, so the command line
prints the message and exits 2 instead of showing a traceback.
"""

from __future__ import annotations

from AdaptiveBrushDicomLib.errors import UserError


class RemoteError(UserError):
    """A DICOMweb server or DIMSE peer could not do what was asked; the message names the URL / peer."""


class AuthError(RemoteError):
    """The server refused the credentials (HTTP 401 / 403)."""


class ServerUnreachableError(RemoteError):
    """No connection to the server or peer (refused, reset, timed out) even after retries."""
