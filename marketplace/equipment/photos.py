"""Accepting machine photos: size- and type-checked by reading the image itself.

The file name and the browser's content type are whatever the uploader says;
only decoding the bytes tells whether they are a JPEG, PNG or WebP picture.
Stored files get a random name, so an upload can never choose its own path.

Pages show a smaller copy (`display_copy`): a phone photo is 3 to 5 MB and
4 000 px wide, which on a crew's weak signal is many seconds of a machine or
booking page for a picture shown 400 px wide.  The original is kept and
linked: a check-out photo is evidence of the machine's condition.
"""

from __future__ import annotations

import io
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from marketplace.errors import N_, ValidationError

MAX_PHOTO_BYTES = 5 * 1024 * 1024
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
# Longest side of the copy pages show: a photo box is at most 20rem (340 CSS px)
# tall and a phone about 412 CSS px wide, so 1 024 px is sharp at 2-2.5x pixel density.
DISPLAY_EDGE = 1024
DISPLAY_QUALITY = 75  # WebP: about 50-150 KB for a phone photo at DISPLAY_EDGE
# Decoding more pixels than this (after JPEG's draft scaling) would cost the server
# hundreds of MB of memory; such a picture is shown as it was sent.
DISPLAY_MAX_SOURCE_PIXELS = 40_000_000


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
            kind = image.format
            image.verify()
    except Image.DecompressionBombError:  # a small file that would unpack to gigabytes
        raise _refuse(N_("The picture has too many pixels to process. Send a smaller "
                         "photo, such as one taken with a phone.")) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise _refuse(N_("That file is not a picture. Send a JPEG, PNG or WebP photo.")) from None
    if kind not in _EXTENSIONS:
        raise _refuse(N_("That file is not a picture. Send a JPEG, PNG or WebP photo."))
    return _EXTENSIONS[kind]


def store_photo(data: bytes, directory: Path) -> str:
    """Check the image and save it under a random name; returns that name."""
    extension = image_extension(data)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}.{extension}"
    (directory / name).write_bytes(data)
    return name


def is_stored_name(name: str) -> bool:
    """True for names `store_photo` produces (so a URL cannot reach other files)."""
    stem, _, extension = name.partition(".")
    return (len(stem) == 32 and all(c in "0123456789abcdef" for c in stem)
            and extension in MEDIA_TYPES)


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
