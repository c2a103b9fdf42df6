"""Insurance fixtures: the jobs world (A posts, B is a partner) and documents to upload."""

from __future__ import annotations

import io

from PIL import Image

from tests.jobs.conftest import jobs_world  # noqa: F401 - a fixture shared with tests/jobs

#: A minimal PDF a viewer opens: header, one object, xref pointer, end-of-file marker.
PDF = (
    b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    b"xref\n0 3\ntrailer\n<< /Root 1 0 R /Size 3 >>\nstartxref\n110\n%%EOF\n"
)


def jpeg_with_exif() -> bytes:
    """A real JPEG whose EXIF names a camera and a GPS position (what a phone writes)."""
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Model X"  # Model
    exif[0x0112] = 6  # Orientation: turned 90 degrees
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (43.0, 39.0, 11.0)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (30, 120, 60)).save(buffer, "PNG")
    return buffer.getvalue()
