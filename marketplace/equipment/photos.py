"""Accepting machine photos: size- and type-checked by reading the image itself.

The file name and the browser's content type are whatever the uploader says;
only decoding the bytes tells whether they are a JPEG, PNG or WebP picture.
Stored files get a random name, so an upload can never choose its own path.

What is stored is the picture re-encoded (`store_photo`), never the bytes as
sent: a phone writes where a picture was taken (the machine's yard, the crew's
position at check-out), its make and serial number and sometimes a thumbnail
into the file, and members of the cluster see each other's photos.  The stored
photo is upright, full size, in the format sent, with nothing but its pixels
and colour profile.

Pages show a smaller copy (`display_copy`): a phone photo is 3 to 5 MB and
4 000 px wide, which on a crew's weak signal is many seconds of a machine or
booking page for a picture shown 400 px wide.  The full-size photo is kept and
linked: a check-out photo is evidence of the machine's condition.
"""

from __future__ import annotations

import io
import os
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from marketplace.errors import N_, ValidationError

MAX_PHOTO_BYTES = 5 * 1024 * 1024
# Re-encoding holds the decoded picture twice (as sent, then turned upright): about
# 300 MB at this size.  A 48 or 50 megapixel phone photo fits; more is refused.
MAX_PHOTO_PIXELS = 50_000_000
JPEG_QUALITY = 90  # re-encoded at upload: visually the same as a phone's own 90-95
WEBP_QUALITY = 90
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
# Longest side of the copy pages show: a photo box is at most 20rem (340 CSS px)
# tall and a phone about 412 CSS px wide, so 1 024 px is sharp at 2-2.5x pixel density.
DISPLAY_EDGE = 1024
DISPLAY_QUALITY = 75  # WebP: about 50-150 KB for a phone photo at DISPLAY_EDGE
# Decoding more pixels than this (after JPEG's draft scaling) would cost the server
# hundreds of MB of memory; such a picture is shown as it is stored.
DISPLAY_MAX_SOURCE_PIXELS = 40_000_000

_NOT_A_PICTURE = N_("That file is not a picture. Send a JPEG, PNG or WebP photo.")
_TOO_MANY_PIXELS = N_("The picture has too many pixels to process. Send a smaller "
                      "photo, such as one taken with a phone.")


def _refuse(message: str) -> ValidationError:
    return ValidationError("invalid_photo", message, fields={"photo": message})


def image_extension(data: bytes) -> str:
    """The extension for a JPEG, PNG or WebP image, or a ValidationError saying what to fix."""
    if len(data) > MAX_PHOTO_BYTES:
        raise _refuse(N_("The photo is larger than 5 MB. Send a smaller picture."))
    if not data:
        raise _refuse(N_("The photo file is empty."))
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, pixels = image.format, image.width * image.height
            image.verify()
    except Image.DecompressionBombError:  # a small file that would unpack to gigabytes
        raise _refuse(_TOO_MANY_PIXELS) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise _refuse(_NOT_A_PICTURE) from None
    if kind not in _EXTENSIONS:
        raise _refuse(_NOT_A_PICTURE)
    if pixels > MAX_PHOTO_PIXELS:
        raise _refuse(_TOO_MANY_PIXELS)
    return _EXTENSIONS[kind]


def _reencoded(data: bytes) -> tuple[bytes, str]:
    """The picture in `data` written anew, and its extension; ValidationError if it cannot be.

    Turned upright by its EXIF orientation, at full resolution, in the format it
    came in: JPEG at quality JPEG_QUALITY, PNG lossless (the same pixels), WebP
    lossless if it was, else at WEBP_QUALITY.  An animation keeps its first frame.
    Nothing of the file is carried over but the pixels, PNG transparency and the
    ICC colour profile: no EXIF (GPS, make, serial numbers, thumbnail), XMP, IPTC,
    comments, PNG text or any other chunk.  The colour profile stays because it is
    how the pixels are meant to look (phones shoot in Display P3; without the
    profile their colours show dull, and converting to sRGB would clip them) and it
    describes a colour space, not the picture, the place or the person.
    """
    extension = image_extension(data)
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, profile = image.format, image.info.get("icc_profile")
            upright = ImageOps.exif_transpose(image)  # decodes; a copy, turned if need be
    except Image.DecompressionBombError:
        raise _refuse(_TOO_MANY_PIXELS) from None
    except (OSError, SyntaxError, ValueError, KeyError, struct.error):  # truncated, corrupt
        raise _refuse(_NOT_A_PICTURE) from None
    upright.info = ({"transparency": upright.info["transparency"]}
                    if "transparency" in upright.info else {})
    out = io.BytesIO()
    if kind == "JPEG":
        if upright.mode not in ("L", "RGB", "CMYK"):
            upright = upright.convert("RGB")
        upright.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, icc_profile=profile)
    elif kind == "PNG":
        upright.save(out, "PNG", icc_profile=profile)
    else:
        lossless = _webp_lossless(data)
        upright.save(out, "WEBP", lossless=lossless, quality=WEBP_QUALITY, icc_profile=profile)
    return out.getvalue(), extension


def _webp_lossless(data: bytes) -> bool:
    try:
        return b"VP8L" in _webp_chunks(data)
    except (_Malformed, struct.error, IndexError):
        return False


def store_photo(data: bytes, directory: Path) -> str:
    """Check the image and save it re-encoded without metadata under a random name;
    returns that name.  The bytes as sent are never written."""
    clean, extension = _reencoded(data)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}.{extension}"
    _write_whole(directory / name, clean)
    return name


def _write_whole(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file and rename it over `path`: a reader sees the
    old file or the new one, never a torn one."""
    partial = path.with_name(f"{path.name}.{secrets.token_hex(4)}.part")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def is_stored_name(name: str) -> bool:
    """True for names `store_photo` produces (so a URL cannot reach other files)."""
    stem, _, extension = name.partition(".")
    return (len(stem) == 32 and all(c in "0123456789abcdef" for c in stem)
            and extension in MEDIA_TYPES)


class _Malformed(Exception):
    """The file does not have the structure its extension says."""


_WEBP_METADATA_FLAGS = 0x08 | 0x04 | 0x02  # VP8X: EXIF, XMP, animation


def _webp_chunks(data: bytes) -> list[bytes]:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise _Malformed
    kinds: list[bytes] = []
    at = 12
    while at + 8 <= len(data):
        kind, length = struct.unpack_from("<4sI", data, at)
        if kind == b"VP8X" and data[at + 8] & _WEBP_METADATA_FLAGS:
            kinds.append(b"(VP8X metadata flags)")
        kinds.append(kind)
        at += 8 + length + (length & 1)
    if at != len(data) or struct.unpack_from("<I", data, 4)[0] != len(data) - 8:
        kinds.append(b"(outside RIFF)")
    return kinds


@dataclass(frozen=True)
class Rendition:
    """A file to show for a stored photo: where it is, its media type, its pixel size."""

    path: Path
    media_type: str
    width: int
    height: int


def display_copy(directory: Path, name: str) -> Rendition | None:
    """The copy of stored photo `name` that pages show; None when the photo is gone.

    At most DISPLAY_EDGE pixels a side, turned upright by its EXIF orientation
    and without its metadata (phones record where a picture was taken), as
    WebP.  Made on first use and kept under `directory/display/` (stored names
    are random, so a copy never goes stale); written to a temporary file and
    renamed, so two requests making it at once cannot leave a torn file.  A
    picture that cannot be made smaller is shown as it was sent.
    """
    original = directory / name
    copy = directory / "display" / f"{name.partition('.')[0]}.webp"
    try:
        if copy.is_file():
            with Image.open(copy) as shown:
                return Rendition(copy, MEDIA_TYPES["webp"], *shown.size)
        with Image.open(original) as image:
            image.draft("RGB", (DISPLAY_EDGE, DISPLAY_EDGE))  # JPEG decodes at 1/2..1/8 size
            as_sent = Rendition(original, MEDIA_TYPES[name.rpartition(".")[2]], *image.size)
            if image.width * image.height > DISPLAY_MAX_SOURCE_PIXELS:
                return as_sent
            upright = ImageOps.exif_transpose(image)
            upright.thumbnail((DISPLAY_EDGE, DISPLAY_EDGE))
            upright = upright.convert("RGBA" if upright.has_transparency_data else "RGB")
    except (OSError, ValueError, KeyError, Image.DecompressionBombError):
        return None
    copy.parent.mkdir(parents=True, exist_ok=True)
    partial = copy.with_name(f"{copy.name}.{secrets.token_hex(4)}.part")
    try:
        upright.save(partial, "WEBP", quality=DISPLAY_QUALITY)
        os.replace(partial, copy)
    except OSError:
        partial.unlink(missing_ok=True)
        return as_sent
    return Rendition(copy, MEDIA_TYPES["webp"], *upright.size)
