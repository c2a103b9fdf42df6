"""Accepting machine photos: size- and type-checked by reading the image itself.

The file name and the browser's content type are whatever the uploader says;
only decoding the bytes tells whether they are a JPEG, PNG or WebP picture.
Stored files get a random name, so an upload can never choose its own path.
"""

from __future__ import annotations

import io
import secrets
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from marketplace.errors import N_, ValidationError

MAX_PHOTO_BYTES = 5 * 1024 * 1024
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


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
