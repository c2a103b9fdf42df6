"""Accepting machine photos: size- and type-checked by reading the image itself.

The file name and the browser's content type are whatever the uploader says;
only decoding the bytes tells whether they are a JPEG, PNG or WebP picture.
Stored files get a random name, so an upload can never choose its own path.

What is stored is the picture re-encoded (`store_photo`), never the bytes as
sent: a phone writes where a picture was taken (the machine's yard, the crew's
position at check-out), its make and serial number and sometimes a thumbnail
into the file, and members of the cluster see each other's photos.  The stored
photo is upright, full size, in the format sent, with nothing but its pixels
and colour profile.  Photos stored before that are scrubbed the same way the
first time they are served (`full_size`), so no response carries metadata.

Pages show a smaller copy (`display_copy`): a phone photo is 3 to 5 MB and
4 000 px wide, which on a crew's weak signal is many seconds of a machine or
booking page for a picture shown 400 px wide.  The full-size photo is kept and
linked: a check-out photo is evidence of the machine's condition.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from marketplace.errors import N_, ValidationError

log = logging.getLogger(__name__)

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
# hundreds of MB of memory; such a picture is shown at full size.
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


# --- is a stored file clean? -------------------------------------------------------------
# Read from the file's structure, not by decoding it: cheap enough for every request
# for a full-size photo, and it sees what a decoder skips (PNG text after the pixels,
# a video or a second picture appended after a JPEG's end).  Only the parts
# `_reencoded` writes count as clean, so a file it wrote is never written again.

_JPEG_KEPT_APPS = {0xE0: b"JFIF\0", 0xE2: b"ICC_PROFILE\0", 0xEE: b"Adobe"}
_PNG_KEPT = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"iCCP", b"gAMA", b"cHRM",
             b"sRGB", b"sBIT"}
_WEBP_KEPT = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ICCP"}
_WEBP_METADATA_FLAGS = 0x08 | 0x04 | 0x02  # VP8X: EXIF, XMP, animation


class _Malformed(Exception):
    """The file does not have the structure its extension says."""


def _jpeg_clean(data: bytes) -> bool:
    if data[:2] != b"\xff\xd8":
        raise _Malformed
    at = 2
    while True:
        if at >= len(data) or data[at] != 0xFF:
            raise _Malformed
        while at < len(data) and data[at] == 0xFF:  # fill bytes before a marker
            at += 1
        if at >= len(data):
            raise _Malformed
        marker, at = data[at], at + 1
        if marker == 0xD9:  # end of image: nothing may follow
            return at == len(data)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length
            continue
        if at + 2 > len(data):
            raise _Malformed
        (length,) = struct.unpack_from(">H", data, at)
        segment = data[at + 2:at + length]
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:  # APPn, comment
            kept = _JPEG_KEPT_APPS.get(marker)
            if kept is None or not segment.startswith(kept):
                return False
        at += length
        if marker == 0xDA:  # a scan: coded data up to the next marker
            while True:
                at = data.find(b"\xff", at)
                if at < 0 or at + 1 >= len(data):
                    raise _Malformed
                following = data[at + 1]
                if following == 0 or 0xD0 <= following <= 0xD7:  # stuffed byte, restart
                    at += 2
                elif following == 0xFF:
                    at += 1
                else:
                    break


def _png_chunks(data: bytes) -> list[bytes]:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise _Malformed
    kinds: list[bytes] = []
    at = 8
    while at < len(data):
        if at + 12 > len(data):
            raise _Malformed
        length, kind = struct.unpack_from(">I4s", data, at)
        kinds.append(kind)
        at += 12 + length
        if kind == b"IEND":
            if at != len(data):
                kinds.append(b"(after IEND)")
            break
    return kinds


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


def carries_metadata(data: bytes, extension: str) -> bool:
    """Whether a stored file holds anything but pixels and how to show them (also True
    when it is not a well-formed file of its kind: then only re-encoding can tell)."""
    try:
        if extension == "jpg":
            return not _jpeg_clean(data)
        if extension == "png":
            return not set(_png_chunks(data)) <= _PNG_KEPT
        return not set(_webp_chunks(data)) <= _WEBP_KEPT
    except (_Malformed, struct.error, IndexError):
        return True


@dataclass(frozen=True)
class Rendition:
    """A file to show for a stored photo: where it is, its media type, its pixel size."""

    path: Path
    media_type: str
    width: int
    height: int


def full_size(directory: Path, name: str) -> Rendition | None:
    """Stored photo `name` at full size, without metadata; None when it is gone or
    cannot be made clean (then it is never sent as it is).

    A photo stored before uploads were re-encoded still carries what the phone
    wrote: it is re-encoded in place the first time it is asked for, as
    `store_photo` would have, and written to a temporary file and renamed.  A
    clean file is left alone, so this is done once; requests racing on the first
    time each re-encode the file as sent (never a copy already re-encoded) and
    the last rename wins with the same bytes.
    """
    path = directory / name
    extension = name.rpartition(".")[2]
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if carries_metadata(data, extension):
        try:
            data, kind = _reencoded(data)
        except ValidationError:
            log.warning("photo %s carries metadata and cannot be re-encoded: not served",
                        path)
            return None
        if kind != extension:
            log.warning("photo %s is not the %s its name says: not served", path, extension)
            return None
        try:
            _write_whole(path, data)
        except OSError:
            log.exception("photo %s could not be scrubbed in place: not served", path)
            return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return Rendition(path, MEDIA_TYPES[extension], width, height)


def display_copy(directory: Path, name: str) -> Rendition | None:
    """The copy of stored photo `name` that pages show; None when the photo is gone.

    At most DISPLAY_EDGE pixels a side, turned upright by its EXIF orientation
    and without its metadata (phones record where a picture was taken), as
    WebP.  Made on first use and kept under `directory/display/` (stored names
    are random, so a copy never goes stale); written to a temporary file and
    renamed, so two requests making it at once cannot leave a torn file.  A
    picture that cannot be made smaller is shown at full size (`full_size`:
    without metadata too).
    """
    original = directory / name
    copy = directory / "display" / f"{name.partition('.')[0]}.webp"
    try:
        if copy.is_file():
            with Image.open(copy) as shown:
                return Rendition(copy, MEDIA_TYPES["webp"], *shown.size)
        with Image.open(original) as image:
            image.draft("RGB", (DISPLAY_EDGE, DISPLAY_EDGE))  # JPEG decodes at 1/2..1/8 size
            if image.width * image.height > DISPLAY_MAX_SOURCE_PIXELS:
                upright = None
            else:
                upright = ImageOps.exif_transpose(image)
                upright.thumbnail((DISPLAY_EDGE, DISPLAY_EDGE))
                upright = upright.convert("RGBA" if upright.has_transparency_data else "RGB")
    except (OSError, ValueError, KeyError, Image.DecompressionBombError):
        return None
    if upright is None:
        return full_size(directory, name)
    copy.parent.mkdir(parents=True, exist_ok=True)
    partial = copy.with_name(f"{copy.name}.{secrets.token_hex(4)}.part")
    try:
        upright.save(partial, "WEBP", quality=DISPLAY_QUALITY)
        os.replace(partial, copy)
    except OSError:
        partial.unlink(missing_ok=True)
        return full_size(directory, name)
    return Rendition(copy, MEDIA_TYPES["webp"], *upright.size)
