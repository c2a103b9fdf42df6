"""The copy of a photo pages show: small, upright, without metadata; the full size kept."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from PIL import Image
from sqlmodel import Session

from marketplace.db import utcnow
from marketplace.equipment import listings
from marketplace.equipment.photos import (
    DISPLAY_EDGE,
    MAX_PHOTO_BYTES,
    display_copy,
    image_extension,
    store_photo,
)
from marketplace.errors import ValidationError
from tests.conftest import World, login
from tests.equipment.conftest import anytime_draft as draft

ORIENTATION, GPS_INFO = 0x0112, 0x8825


def phone_photo(width: int = 4032, height: int = 3024) -> bytes:
    """A JPEG as phones write them: big, sideways with an EXIF turn, with a location."""
    image = Image.effect_mandelbrot((width, height), (-2.2, -1.2, 1.0, 1.2), 60).convert("RGB")
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # "rotate 90 degrees clockwise to show"
    exif[GPS_INFO] = {1: "N", 2: (45.0, 25.0, 0.0)}
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def test_the_copy_is_small_upright_and_without_metadata(tmp_path: Path) -> None:
    sent = phone_photo()
    name = store_photo(sent, tmp_path)
    shown = display_copy(tmp_path, name)
    assert shown is not None and shown.media_type == "image/webp"
    with Image.open(shown.path) as copy:
        assert copy.format == "WEBP" and copy.size == (shown.width, shown.height)
        assert copy.size == (DISPLAY_EDGE * 3 // 4, DISPLAY_EDGE)  # turned: portrait now
        assert not copy.getexif()
    assert shown.path.stat().st_size < len(sent) / 10
    with Image.open(tmp_path / name) as kept:  # full size, upright, nothing else
        assert kept.size == (3024, 4032) and not kept.getexif()


def test_the_copy_is_made_once(tmp_path: Path) -> None:
    name = store_photo(phone_photo(800, 600), tmp_path)
    first = display_copy(tmp_path, name)
    assert first is not None
    made = first.path.stat().st_mtime_ns
    again = display_copy(tmp_path, name)
    assert again == first and again.path.stat().st_mtime_ns == made
    assert [p.name for p in first.path.parent.iterdir()] == [first.path.name]  # no leftovers


def test_a_missing_or_broken_photo_shows_nothing(tmp_path: Path) -> None:
    assert display_copy(tmp_path, "a" * 32 + ".jpg") is None
    (tmp_path / ("b" * 32 + ".png")).write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert display_copy(tmp_path, "b" * 32 + ".png") is None


def test_the_machine_page_shows_the_copy_and_links_the_full_size(
        client: FlaskClient, session: Session, world: World, tmp_path: Path) -> None:
    sent = phone_photo()
    name = store_photo(sent, tmp_path / "uploads" / "equipment")  # the app's UPLOAD_DIR
    machine = listings.list_machine(session, world.owner_a, draft(), utcnow(), name)
    login(client, world.owner_b)
    page = client.get(f"/equipment/{machine.id}").get_data(as_text=True)
    img = re.search(r'<a href="([^"]+)"><img class="photo" src="([^"]+)"[^>]*'
                    r'width="(\d+)" height="(\d+)"', page)
    assert img is not None, page
    full_url, shown_url, width, height = img.groups()
    assert (int(width), int(height)) == (DISPLAY_EDGE * 3 // 4, DISPLAY_EDGE)
    shown = client.get(shown_url)
    assert shown.mimetype == "image/webp" and len(shown.get_data()) < len(sent) / 10
    full = client.get(full_url.replace("&amp;", "&"))
    stored = (tmp_path / "uploads" / "equipment" / name).read_bytes()
    assert full.mimetype == "image/jpeg" and full.get_data() == stored
    with Image.open(io.BytesIO(full.get_data())) as served:
        assert served.size == (3024, 4032) and not served.getexif()


def test_a_decompression_bomb_is_refused_as_bad_input() -> None:
    """A few hundred kilobytes of PNG that would unpack to 225 megapixels: a 422 that says
    what to send, never a 500 (Pillow raises rather than decode it)."""
    buffer = io.BytesIO()
    Image.new("1", (15_000, 15_000)).save(buffer, "PNG")
    assert len(buffer.getvalue()) < MAX_PHOTO_BYTES
    with pytest.raises(ValidationError) as refused:
        image_extension(buffer.getvalue())
    assert "too many pixels" in refused.value.fields["photo"]
