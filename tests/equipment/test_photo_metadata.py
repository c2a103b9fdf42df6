"""No photo response carries metadata: where a phone was, what it was, what was written.

Uploads are re-encoded upright without EXIF, GPS, XMP, comments or PNG text, and the
bytes as sent never reach the disk; photos stored before that are scrubbed the first
time they are served.  Every check reads the served bytes and the files on disk.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image, ImageChops, ImageCms, ImageOps, ImageStat, PngImagePlugin
from sqlmodel import Session, select

from marketplace.db import utcnow
from marketplace.equipment import booking, listings, photos
from marketplace.equipment.models import Equipment
from marketplace.errors import ValidationError
from tests.conftest import World, login
from tests.equipment.conftest import anytime_draft as draft

ORIENTATION, MAKE, GPS_INFO = 0x0112, 0x010F, 0x8825
PLACE = "Etobicoke yard 43.6205 N 79.5132 W"
MAKER = "PhoneMaker"
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/'
       b'1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/'
       b'exif/1.0/" exif:GPSLatitude="43,37.23N"/></rdf:RDF></x:xmpmeta>')
SIDEWAYS = (320, 240)  # as the sensor wrote it; orientation 6 shows it 240 x 320
UPRIGHT = (240, 320)
# What a picture may still say about itself: how to draw its pixels, nothing else.
PIXEL_INFO = {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi", "icc_profile",
              "progressive", "progression", "adobe", "adobe_transform", "transparency",
              "background", "loop", "duration", "timestamp"}


def exif() -> Image.Exif:
    """A phone's EXIF: turn 90 degrees clockwise to show, who made it, where it was."""
    tags = Image.Exif()
    tags[ORIENTATION] = 6
    tags[MAKE] = MAKER
    tags[GPS_INFO] = {1: "N", 2: (43.0, 37.0, 13.8), 3: "W", 4: (79.0, 30.0, 47.5)}
    return tags


def sideways() -> Image.Image:
    """Red on the left half, blue on the right: shown upright, red is on top."""
    image = Image.new("RGB", SIDEWAYS, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, SIDEWAYS[0] // 2, SIDEWAYS[1]))
    return image


def jpeg_with_gps() -> bytes:
    buffer = io.BytesIO()
    sideways().save(buffer, "JPEG", quality=95, exif=exif(), xmp=XMP, comment=PLACE)
    return buffer.getvalue()


def png_with_text() -> bytes:
    text = PngImagePlugin.PngInfo()
    text.add_text("Location", PLACE)  # a tEXt chunk
    buffer = io.BytesIO()
    sideways().save(buffer, "PNG", pnginfo=text, exif=exif())
    return buffer.getvalue()


def webp_with_exif() -> bytes:
    buffer = io.BytesIO()
    sideways().save(buffer, "WEBP", quality=95, exif=exif().tobytes(), xmp=XMP)
    return buffer.getvalue()


def text_after_pixels(png: bytes) -> bytes:
    """The PNG with one more tEXt chunk after its pixel data, where readers that stop
    at the first IDAT never look."""
    body = b"Comment\0" + PLACE.encode()
    chunk = (struct.pack(">I", len(body)) + b"tEXt" + body
             + struct.pack(">I", zlib.crc32(b"tEXt" + body)))
    end = png.rindex(b"IEND") - 4
    return png[:end] + chunk + png[end:]


PHOTOS: dict[str, tuple[Callable[[], bytes], str]] = {
    "jpeg": (jpeg_with_gps, "image/jpeg"),
    "png": (png_with_text, "image/png"),
    "webp": (webp_with_exif, "image/webp"),
}


def assert_no_metadata(data: bytes) -> None:
    """Nothing in the picture but its pixels and how to draw them."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # PNG chunks after the pixel data are read only now
        assert not image.getexif(), dict(image.getexif())
        assert not image.getexif().get_ifd(GPS_INFO)
        assert set(image.info) <= PIXEL_INFO, set(image.info) - PIXEL_INFO
        assert not getattr(image, "text", None)
    for trace in (PLACE.encode(), MAKER.encode(), b"GPSLatitude", b"Exif\0\0"):
        assert trace not in data


def assert_upright(data: bytes, size: tuple[int, int] = UPRIGHT) -> None:
    """Turned as the EXIF said: portrait, red on top and blue below."""
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == size
        pixels = image.convert("RGB")
    width, height = size
    top, bottom = pixels.getpixel((width // 2, height // 4)), pixels.getpixel(
        (width // 2, 3 * height // 4))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def assert_clean_on_disk(app: Flask) -> None:
    files = [p for p in Path(app.config["UPLOAD_DIR"]).rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert not path.name.endswith(".part"), path
        assert_no_metadata(path.read_bytes())


def assert_served_clean(client: FlaskClient, url: str, media_type: str) -> bytes:
    """The display copy and the full-size photo at `url`; returns the full size."""
    shown = client.get(url)
    assert shown.status_code == 200 and shown.mimetype == "image/webp"
    assert_no_metadata(shown.get_data())
    assert_upright(shown.get_data())
    full = client.get(f"{url}?size=full")
    assert full.status_code == 200 and full.mimetype == media_type
    assert_no_metadata(full.get_data())
    assert_upright(full.get_data())  # full resolution, turned
    return full.get_data()


def list_with_photo(client: FlaskClient, session: Session, data: bytes, name: str) -> int:
    """List a machine through the page, photo attached; its id."""
    form = {"name": name, "kind": "mini_excavator", "description": "3.5 t",
            "locality": "East yard", "base_lat": "45.4", "base_lng": "-75.7",
            "hour_rate": "85.50", "day_rate": "520", "granularity_minutes": "30",
            "min_minutes": "60", "max_minutes": "2880", "buffer_minutes": "60",
            "timezone": "America/Toronto", "cancel_cutoff_hours": "24", "cancel_fee": "50",
            "opens-0": "07:00", "closes-0": "18:00",
            "photo": (io.BytesIO(data), "from-the-phone")}
    response = client.post("/equipment/new", data=form, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)
    machine = session.exec(select(Equipment).where(Equipment.name == name)).one()
    assert machine.id is not None
    return machine.id


@pytest.mark.parametrize("kind", PHOTOS)
def test_a_machine_photo_is_served_and_stored_without_metadata(
        kind: str, app: Flask, client: FlaskClient, session: Session, world: World) -> None:
    make, media_type = PHOTOS[kind]
    login(client, world.owner_a)
    machine_id = list_with_photo(client, session, make(), f"Excavator {kind}")
    assert_served_clean(client, f"/equipment/{machine_id}/photo", media_type)
    login(client, world.owner_b)  # what another member sees is the same clean file
    assert_served_clean(client, f"/equipment/{machine_id}/photo", media_type)
    assert_clean_on_disk(app)


@pytest.mark.parametrize("kind", PHOTOS)
def test_a_checkout_photo_is_served_and_stored_without_metadata(
        kind: str, app: Flask, client: FlaskClient, session: Session, world: World) -> None:
    make, media_type = PHOTOS[kind]
    machine = listings.list_machine(session, world.owner_a, draft(), utcnow())
    starts = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    made = booking.book(session, world.owner_b, machine.id,  # type: ignore[arg-type]
                        starts, starts + timedelta(hours=3), utcnow())
    login(client, world.owner_b)  # the crew's phone at hand-over
    checked_out = client.post(f"/equipment/bookings/{made.id}/check-out", data={
        "meter": "120.5", "note": "Clean", "photo": (io.BytesIO(make()), "hand-over")},
        content_type="multipart/form-data")
    assert checked_out.status_code == 302, checked_out.get_data(as_text=True)
    login(client, world.owner_a)
    assert_served_clean(client, f"/equipment/bookings/{made.id}/checkout-photo", media_type)
    assert_clean_on_disk(app)


def test_the_full_size_keeps_format_resolution_and_pixels(tmp_path: Path) -> None:
    """Re-encoding keeps what the photo shows: PNG pixel for pixel, JPEG and WebP at
    high quality, all at full resolution; an sRGB/P3 colour profile stays."""
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    sideways().save(buffer, "JPEG", quality=95, exif=exif(), icc_profile=profile)
    for data, extension in ((png_with_text(), "png"), (buffer.getvalue(), "jpg"),
                            (webp_with_exif(), "webp")):
        name = photos.store_photo(data, tmp_path)
        assert name.endswith(f".{extension}")
        stored = (tmp_path / name).read_bytes()
        assert_no_metadata(stored)
        with Image.open(io.BytesIO(data)) as sent, Image.open(io.BytesIO(stored)) as kept:
            assert kept.format == sent.format and kept.size == UPRIGHT
            assert kept.info.get("icc_profile") == sent.info.get("icc_profile")
            turned = ImageOps.exif_transpose(sent).convert("RGB")
            difference = ImageChops.difference(turned, kept.convert("RGB"))
        if extension == "png":
            assert difference.getbbox() is None  # lossless: every pixel the same
        else:  # quality 90: off by a shade at the sharp red/blue edge, nowhere much
            assert max(ImageStat.Stat(difference).mean) < 1


def _saved(mode: str, kind: str, **options: object) -> bytes:
    image = sideways().convert(mode)
    if mode == "P":
        options["transparency"] = 0
    buffer = io.BytesIO()
    image.save(buffer, kind, exif=exif(), **options)
    return buffer.getvalue()


SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
SENT_NOW = {
    "jpeg-gray": lambda: _saved("L", "JPEG"),
    "jpeg-cmyk": lambda: _saved("CMYK", "JPEG"),
    "jpeg-progressive-srgb": lambda: _saved("RGB", "JPEG", progressive=True,
                                            icc_profile=SRGB),
    "png-bilevel": lambda: _saved("1", "PNG"),
    "png-gray-alpha": lambda: _saved("LA", "PNG"),
    "png-palette-transparent": lambda: _saved("P", "PNG"),
    "png-16-bit": lambda: _saved("I;16", "PNG"),
    "png-rgba-srgb": lambda: _saved("RGBA", "PNG", icc_profile=SRGB),
    "webp-alpha": lambda: _saved("RGBA", "WEBP"),
    "webp-lossless-srgb": lambda: _saved("RGB", "WEBP", lossless=True, icc_profile=SRGB),
}


@pytest.mark.parametrize("kind", SENT_NOW)
def test_a_photo_stored_now_is_never_scrubbed_again(kind: str, tmp_path: Path) -> None:
    """Whatever the kind of picture, what `store_photo` writes is what serving counts
    as clean: it is never re-encoded again (each time would lose a little)."""
    name = photos.store_photo(SENT_NOW[kind](), tmp_path)
    stored = tmp_path / name
    assert_no_metadata(stored.read_bytes())
    assert not photos.carries_metadata(stored.read_bytes(), name.rpartition(".")[2])
    written = stored.stat().st_mtime_ns
    served = photos.full_size(tmp_path, name)
    assert served is not None and served.path == stored and (served.width,
                                                              served.height) == UPRIGHT
    assert stored.stat().st_mtime_ns == written


def test_a_picture_too_large_to_re_encode_is_refused_not_stored(tmp_path: Path) -> None:
    """A small file of very many pixels (51 megapixels of one colour) would take
    hundreds of MB to re-encode: refused with what to send, and nothing written."""
    buffer = io.BytesIO()
    Image.new("1", (8_000, 6_400)).save(buffer, "PNG")
    assert len(buffer.getvalue()) < photos.MAX_PHOTO_BYTES
    with pytest.raises(ValidationError) as refused:
        photos.store_photo(buffer.getvalue(), tmp_path / "equipment")
    assert "too many pixels" in refused.value.fields["photo"]
    assert not (tmp_path / "equipment").exists() or not any(
        (tmp_path / "equipment").iterdir())


def old_upload(app: Flask, data: bytes, extension: str) -> str:
    """A photo stored the way uploads were before re-encoding: the bytes as sent."""
    name = f"{'0123456789abcdef' * 2}.{extension}"
    directory = Path(app.config["UPLOAD_DIR"]) / "equipment"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)
    return name


OLD = {
    "jpg": (jpeg_with_gps, "image/jpeg"),
    "png": (lambda: text_after_pixels(png_with_text()), "image/png"),
    "webp": (webp_with_exif, "image/webp"),
}


@pytest.mark.parametrize("extension", OLD)
def test_a_photo_stored_before_is_scrubbed_when_first_served(
        extension: str, app: Flask, client: FlaskClient, session: Session,
        world: World) -> None:
    make, media_type = OLD[extension]
    name = old_upload(app, make(), extension)
    machine = listings.list_machine(session, world.owner_a, draft(), utcnow(), name)
    login(client, world.owner_b)
    full = client.get(f"/equipment/{machine.id}/photo?size=full")
    assert full.status_code == 200 and full.mimetype == media_type
    assert_no_metadata(full.get_data())
    assert_upright(full.get_data())
    stored = Path(app.config["UPLOAD_DIR"]) / "equipment" / name
    assert stored.read_bytes() == full.get_data()  # scrubbed in place
    scrubbed_at = stored.stat().st_mtime_ns
    again = client.get(f"/equipment/{machine.id}/photo?size=full")
    assert again.get_data() == full.get_data()  # once: a clean file is left alone
    assert stored.stat().st_mtime_ns == scrubbed_at
    assert_served_clean(client, f"/equipment/{machine.id}/photo", media_type)
    assert_clean_on_disk(app)


def test_an_old_photo_shown_as_sent_is_scrubbed_first(
        app: Flask, client: FlaskClient, session: Session, world: World,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A picture too big for a display copy is shown itself: scrubbed, never raw."""
    monkeypatch.setattr(photos, "DISPLAY_MAX_SOURCE_PIXELS", 100)
    name = old_upload(app, jpeg_with_gps(), "jpg")
    machine = listings.list_machine(session, world.owner_a, draft(), utcnow(), name)
    login(client, world.owner_a)
    assert client.get(f"/equipment/{machine.id}").status_code == 200  # asks for the copy
    shown = client.get(f"/equipment/{machine.id}/photo")
    assert shown.status_code == 200 and shown.mimetype == "image/jpeg"
    assert_no_metadata(shown.get_data())
    assert_upright(shown.get_data())
    assert_clean_on_disk(app)


def test_an_old_photo_served_by_many_requests_at_once_is_scrubbed_once(
        tmp_path: Path) -> None:
    """Requests racing on the first serve each get a clean file and leave no partial
    file behind; the photo on disk is the re-encoding of the one sent, not of a copy."""
    data = jpeg_with_gps()
    name = f"{'ab' * 16}.jpg"
    (tmp_path / name).write_bytes(data)
    with ThreadPoolExecutor(8) as pool:
        served = list(pool.map(lambda _: photos.full_size(tmp_path, name), range(16)))
    assert all(s is not None and s.path == tmp_path / name for s in served)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    stored = (tmp_path / name).read_bytes()
    assert_no_metadata(stored)
    assert_upright(stored)
    reference = photos.store_photo(data, tmp_path / "again")
    assert (tmp_path / "again" / reference).read_bytes() == stored


def test_an_old_photo_that_cannot_be_cleaned_is_not_served(tmp_path: Path) -> None:
    """A broken file is never sent as it is (it might carry its metadata all the same)."""
    name = f"{'cd' * 16}.jpg"
    (tmp_path / name).write_bytes(jpeg_with_gps()[:400])
    assert photos.full_size(tmp_path, name) is None
    assert photos.full_size(tmp_path, f"{'ef' * 16}.png") is None  # gone
