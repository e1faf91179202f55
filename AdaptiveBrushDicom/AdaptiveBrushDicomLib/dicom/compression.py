"""Transfer syntaxes: the ones we write (:class:`Compression`, and how users name them) and
the ones we only read (:class:`ReadOnlySyntax`). Every transfer syntax UID in the package
comes from here. Imports nothing heavy (the fast header reader uses it without pydicom)."""

from __future__ import annotations

import enum

from AdaptiveBrushDicomLib.errors import UserError


class Compression(str, enum.Enum):
    """Lossless transfer syntaxes offered for SEG files (value = transfer syntax UID)."""

    EXPLICIT = "1.2.840.10008.1.2.1"
    RLE = "1.2.840.10008.1.2.5"
    JPEG2000 = "1.2.840.10008.1.2.4.90"
    JPEGLS = "1.2.840.10008.1.2.4.80"
    DEFLATE = "1.2.840.10008.1.2.1.99"

    @property
    def uid(self) -> str:
        """The transfer syntax UID as a plain string."""
        return str(self.value)

    @property
    def long_name(self) -> str:
        """The transfer syntax's name as ``abdicom info`` prints it (PS3.6 wording)."""
        return _LONG_NAMES[self]

    @property
    def cli_name(self) -> str:
        return self.name.lower()

    @property
    def encapsulated(self) -> bool:
        """True when pixel data is stored as compressed fragments."""
        return self in (Compression.RLE, Compression.JPEG2000, Compression.JPEGLS)

    @classmethod
    def parse(cls, name: "str | Compression") -> "Compression":
        """Accept CLI names (``deflate``), enum names and ADR/pydicom names
        (``RLELossless``, ``DeflatedExplicitVRLittleEndian``) or a transfer syntax UID.

        Raises
        ------
        UserError
            ``name`` is none of these; the message lists the choices.
        """
        if isinstance(name, Compression):
            return name
        key = str(name).strip().lower().replace("-", "").replace("_", "").replace(" ", "")
        if key in _ALIASES:
            return _ALIASES[key]
        for member in cls:
            if key == member.value:
                return member
        choices = ", ".join(m.cli_name for m in cls)
        raise UserError(f"unknown compression {name!r}; choose one of: {choices}")


class ReadOnlySyntax(str, enum.Enum):
    """Transfer syntaxes we read (other tools write them) but never write."""

    IMPLICIT = "1.2.840.10008.1.2"
    JPEG2000_LOSSY = "1.2.840.10008.1.2.4.91"
    JPEGLS_NEAR_LOSSLESS = "1.2.840.10008.1.2.4.81"
    JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
    JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
    JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
    EXPLICIT_BIG_ENDIAN = "1.2.840.10008.1.2.2"
    JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
    HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
    HTJ2K_LOSSLESS_RPCL = "1.2.840.10008.1.2.4.202"
    HTJ2K = "1.2.840.10008.1.2.4.203"

    @property
    def uid(self) -> str:
        """The transfer syntax UID as a plain string."""
        return str(self.value)


_LONG_NAMES: dict[Compression, str] = {
    Compression.EXPLICIT: "Explicit VR Little Endian",
    Compression.DEFLATE: "Deflated Explicit VR Little Endian",
    Compression.RLE: "RLE Lossless",
    Compression.JPEG2000: "JPEG 2000 Lossless",
    Compression.JPEGLS: "JPEG-LS Lossless",
}


def transfer_syntax_name(uid: str) -> str:
    """Human name of a transfer syntax UID (the UID itself when we do not know it)."""
    if uid == ReadOnlySyntax.IMPLICIT.value:
        return "Implicit VR Little Endian"
    for member in Compression:
        if uid == member.value:
            return member.long_name
    return uid


#: The default: smallest lossless syntax every reader in docs/interoperability.md opened
#: voxel-exactly (pydicom, highdicom, dcmqi, DCMTK, dcmjs, Cornerstone3D, Orthanc).
DEFAULT_COMPRESSION = Compression.DEFLATE

_ALIASES: dict[str, Compression] = {
    "explicit": Compression.EXPLICIT,
    "none": Compression.EXPLICIT,
    "explicitvrlittleendian": Compression.EXPLICIT,
    "rle": Compression.RLE,
    "rlelossless": Compression.RLE,
    "jpeg2000": Compression.JPEG2000,
    "j2k": Compression.JPEG2000,
    "jpeg2000lossless": Compression.JPEG2000,
    "jpegls": Compression.JPEGLS,
    "jpeglslossless": Compression.JPEGLS,
    "deflate": Compression.DEFLATE,
    "deflated": Compression.DEFLATE,
    "deflatedexplicitvrlittleendian": Compression.DEFLATE,
    "default": DEFAULT_COMPRESSION,
}
