"""The embedded SQLite index: one file answering the :class:`~..database_protocol.DicomDatabase` queries.

:mod:`.index` is the class callers use (:class:`~.index.SqliteDicomIndex`); the other
modules are its parts: :mod:`.connection` (opening, errors, write transactions),
:mod:`.schema` (tables, schema versions and migrations), :mod:`.parse` (what is read of
one file), :mod:`.ingest` (an import), :mod:`.queries` (the read side) and
:mod:`.maintenance` (verify, remove-missing).
"""
