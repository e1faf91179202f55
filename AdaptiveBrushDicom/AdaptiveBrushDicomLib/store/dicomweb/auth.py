"""Credentials for a DICOMweb server: HTTP basic (password read from a file) or a bearer token
read from a file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from AdaptiveBrushDicomLib.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import requests


# ---------------------------------------------------------------------- auth
@dataclass(frozen=True)
class Auth:
    """Credentials for a DICOMweb server.

    Attributes
    ----------
    user, password : str or None
        HTTP basic authentication.
    token : str or None
        Bearer token (``Authorization: Bearer <token>``); exclusive with basic.
    source : str
        Where the secret came from (a file name), for messages; never the secret itself.
    """

    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    source: str = ""

    @classmethod
    def from_files(
        cls,
        user: str | None = None,
        password_file: str | Path | None = None,
        token_file: str | Path | None = None,
    ) -> "Auth | None":
        """Read credentials: ``user`` + ``password_file``, or ``token_file``, or nothing.

        The secret is the first line of the file (trailing newline removed).

        Raises
        ------
        UserError
            Both kinds given, a user without password file (or the reverse), or an
            unreadable / empty file.
        """
        if token_file and (user or password_file):
            raise UserError("give either --user with --password-file, or --token-file, not both")
        if token_file:
            return cls(token=_read_secret(token_file, "token"), source=str(token_file))
        if bool(user) != bool(password_file):
            raise UserError("--user and --password-file go together; give both (or use --token-file)")
        if user:
            return cls(user=user, password=_read_secret(password_file, "password"), source=str(password_file))
        return None

    def describe(self) -> str:
        """``user 'x' (password from F)`` / ``bearer token from F`` / ``no credentials``."""
        if self.token is not None:
            return f"bearer token from {self.source}" if self.source else "bearer token"
        if self.user is not None:
            return f"user '{self.user}'" + (f" (password from {self.source})" if self.source else "")
        return "no credentials"

    def apply(self, session: "requests.Session") -> None:
        """Configure a ``requests`` session with these credentials."""
        if self.token is not None:
            session.headers["Authorization"] = f"Bearer {self.token}"
        elif self.user is not None:
            session.auth = (self.user, self.password or "")


def _read_secret(path: str | Path | None, what: str) -> str:
    p = Path(str(path))
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read the {what} file: {exc.strerror or exc}; check the path", p) from None
    lines = text.splitlines()
    secret = lines[0].strip("\r\n") if lines else ""
    if not secret:
        raise UserError(f"the {what} file is empty; put the {what} on its first line", p)
    return secret


def _as_auth(auth: "Auth | tuple[str, str] | None") -> Auth | None:
    if auth is None or isinstance(auth, Auth):
        return auth
    user, password = auth
    return Auth(user=user, password=password)
