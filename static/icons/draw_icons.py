"""Draw the app's icons: a bold white leaf on the theme green (run once; the PNGs are kept).

    .venv/bin/python static/icons/draw_icons.py

Why drawn here rather than designed elsewhere: the mark must stay simple enough
to read at 32 px and inside Android's maskable safe zone, and regenerating all
sizes from one shape keeps them identical.  Shapes are drawn 4x larger and
scaled down, which anti-aliases their edges.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageChops, ImageDraw

HERE = Path(__file__).resolve().parent
GREEN = (31, 111, 67, 255)  # --green in static/css/app.css (the manifest's theme_color)
WHITE = (255, 255, 255, 255)
CLEAR = (0, 0, 0, 0)
WORK = 1024  # every mark is drawn on this canvas, then scaled


def leaf_mask(vein: bool = True) -> Image.Image:
    """A lens-shaped leaf (two overlapping circles) with a stem and a midrib, tip
    pointing up-right, filling about 70 % of the canvas."""
    size, r, half_gap = WORK, 0.44 * WORK, 0.26 * WORK
    cx, cy = size / 2, size / 2
    left, right = (Image.new("L", (size, size), 0) for _ in range(2))
    ImageDraw.Draw(left).ellipse((cx - half_gap - r, cy - r, cx - half_gap + r, cy + r), fill=255)
    ImageDraw.Draw(right).ellipse((cx + half_gap - r, cy - r, cx + half_gap + r, cy + r), fill=255)
    leaf = ImageChops.multiply(left, right)
    tip = (r * r - half_gap * half_gap) ** 0.5  # the lens' tips are this far from its centre
    draw = ImageDraw.Draw(leaf)
    stroke = int(0.045 * size)
    draw.line((cx, cy + tip - 4, cx, cy + tip + 0.12 * size), fill=255, width=stroke)  # stem
    if vein:
        draw.line((cx, cy - 0.62 * tip, cx, cy + tip), fill=0, width=int(0.035 * size))
    return leaf.rotate(-45, resample=Image.Resampling.BICUBIC, center=(cx, cy + 0.04 * size))


def icon(size: int, *, scale: float, rounded: bool, background: tuple[int, ...] = GREEN,
         colour: tuple[int, ...] = WHITE, vein: bool = True) -> Image.Image:
    """The leaf at `scale` of the icon's width, centred on a (rounded) square."""
    canvas = Image.new("RGBA", (WORK, WORK), CLEAR)
    if background != CLEAR:
        radius = int(0.22 * WORK) if rounded else 0
        ImageDraw.Draw(canvas).rounded_rectangle((0, 0, WORK - 1, WORK - 1), radius,
                                                 fill=background)
    mark = leaf_mask(vein).resize((int(WORK * scale),) * 2, Image.Resampling.LANCZOS)
    offset = (WORK - mark.width) // 2
    canvas.paste(Image.new("RGBA", mark.size, colour), (offset, offset), mark)
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


def opaque(image: Image.Image) -> Image.Image:
    """iOS fills transparency with black: the touch icon is a full square."""
    return image.convert("RGB")


def main() -> None:
    files = {
        # "any" icons: the rounded square itself is the shape Chrome and desktops show.
        "icon-192.png": icon(192, scale=0.95, rounded=True),
        "icon-512.png": icon(512, scale=0.95, rounded=True),
        # Maskable: full bleed, the leaf inside the central 80 % circle Android keeps.
        "icon-maskable-512.png": icon(512, scale=0.85, rounded=False),
        "apple-touch-icon.png": opaque(icon(180, scale=0.85, rounded=False)),
        "favicon-32.png": icon(32, scale=1.0, rounded=True, vein=False),
        # Android's status bar badge uses only the alpha channel: white on transparent.
        "badge-96.png": icon(96, scale=1.0, rounded=False, background=CLEAR, vein=False),
    }
    for name, image in files.items():
        image.save(HERE / name, optimize=True)
        print(f"{name}: {image.size[0]}x{image.size[1]}")


if __name__ == "__main__":
    main()
