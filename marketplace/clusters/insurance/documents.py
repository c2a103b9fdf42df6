"""Checking an uploaded certificate of insurance by its content, never by its name.

A certificate arrives as a PDF or as a photo of the paper.  What the uploader
calls the file, and the type the browser claims, prove nothing: only decoding
does.  A picture must decode as JPEG, PNG or WebP and is written anew from its
pixels (turned upright), so the phone's EXIF (where the picture was taken, the
device, a thumbnail) never reaches the partners who may download it.  A PDF must
start with the `%PDF-` header, have at least one object, a cross-reference
pointer and an end-of-file marker, and carry no active content (scripts,
launch actions, embedded files): it is kept as sent, since rewriting a PDF
faithfully would take a PDF library for what is a document to read.

No flask here: the size limit is handed in by the caller (the app's config).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from marketplace.errors import N_, ValidationError

#: The default size limit of a certificate (INSURANCE_MAX_BYTES in the app's config).
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
#: A scan of a page at 600 dpi is about 35 megapixels; more is refused, not decoded.
MAX_PIXELS = 50_000_000
PDF = "application/pdf"
_IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
#: The extension a stored document is downloaded with, by media type.
EXTENSIONS = {PDF: "pdf", "image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
_PDF_OBJECT = re.compile(rb"\d+\s+\d+\s+obj\b")
#: Names of PDF features that run or carry something besides the page: refused.
_PDF_ACTIVE = (
    b"/JavaScript",
    b"/JS",
    b"/Launch",
    b"/EmbeddedFile",
    b"/RichMedia",
    b"/XFA",
    b"/OpenAction",
)
_NOT_A_CERTIFICATE = N_(
    "That file is not a PDF or a picture we can read. Send the "
    "certificate as a PDF, or as a JPEG, PNG or WebP photo."
)
FIELD = "document"


@dataclass(frozen=True)
class CheckedDocument:
    content: bytes
    media_type: str


def _refuse(message: str, **params: object) -> ValidationError:
    return ValidationError("invalid_document", message, fields={FIELD: message}, params=params)


def check_document(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> CheckedDocument:
    """The document to store for `data`, or a ValidationError saying what to send instead."""
    if not data:
        raise _refuse(N_("The file is empty. Choose the certificate's PDF or photo."))
    if len(data) > max_bytes:
        raise _refuse(
            N_(
                "The file is larger than %(megabytes)s MB. Send a smaller PDF, or "
                "a photo of the certificate taken at a lower resolution."
            ),
            megabytes=max(1, max_bytes // (1024 * 1024)),
        )
    if data.startswith(b"%PDF-"):
        return CheckedDocument(_checked_pdf(data), PDF)
    return _reencoded_picture(data)


def _checked_pdf(data: bytes) -> bytes:
    """A minimal structural check: header version, an object, startxref, %%EOF."""
    if (
        not re.match(rb"%PDF-\d\.\d", data)
        or not _PDF_OBJECT.search(data)
        or b"endobj" not in data
        or b"startxref" not in data[-4096:]
        or b"%%EOF" not in data[-1024:]
    ):
        raise _refuse(_NOT_A_CERTIFICATE)
    if any(name in data for name in _PDF_ACTIVE):
        raise _refuse(
            N_(
                "The PDF contains scripts, actions or attached files. Print the "
                "certificate to a new PDF, or send a photo of it."
            )
        )
    return data


def _reencoded_picture(data: bytes) -> CheckedDocument:
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, pixels = image.format, image.width * image.height
            image.verify()
        if kind not in _IMAGE_TYPES:
            raise _refuse(_NOT_A_CERTIFICATE)
        if pixels > MAX_PIXELS:
            raise _refuse(
                N_("The picture has too many pixels. Send a photo taken with a phone, or a PDF.")
            )
        with Image.open(io.BytesIO(data)) as image:
            upright = ImageOps.exif_transpose(image)  # a decoded copy, EXIF not carried
    except Image.DecompressionBombError:
        raise _refuse(
            N_("The picture has too many pixels. Send a photo taken with a phone, or a PDF.")
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, KeyError):
        raise _refuse(_NOT_A_CERTIFICATE) from None
    upright.info = {}
    out = io.BytesIO()
    if kind == "JPEG":
        if upright.mode not in ("L", "RGB"):
            upright = upright.convert("RGB")
        upright.save(out, "JPEG", quality=90, optimize=True)
    elif kind == "PNG":
        upright.save(out, "PNG")
    else:
        upright.save(out, "WEBP", quality=90)
    return CheckedDocument(out.getvalue(), _IMAGE_TYPES[str(kind)])
