"""Render the eight object stimulus images in ``assets/objects/``.

Each object is a glyph from the Noto Color Emoji font (Google; SIL Open Font
License 1.1; Debian/Ubuntu package ``fonts-noto-color-emoji``). The glyph is
drawn at size 109 (the only size of this CBDT bitmap font that Pillow renders)
onto a transparent RGBA canvas, cropped to its alpha bounding box, padded to a
centred transparent square, resized to 128x128 with LANCZOS and saved as
``assets/objects/<name>.png`` without timestamps or other metadata, so that
re-running produces byte-identical files.

Requirements: Pillow and the font (``apt-get install fonts-noto-color-emoji``).

Run from the repository root::

    python scripts/make_object_assets.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

# (name, code point), in the fixed stimulus order.
OBJECTS: list[tuple[str, int]] = [
    ("orange", 0x1F34A),  # TANGERINE
    ("apple", 0x1F34E),  # RED APPLE
    ("pot", 0x1F372),  # POT OF FOOD
    ("bell", 0x1F514),  # BELL
    ("hat", 0x1F3A9),  # TOP HAT
    ("rose", 0x1F339),  # ROSE
    ("key", 0x1F511),  # KEY
    ("bomb", 0x1F4A3),  # BOMB
]

FONT_FAMILY = "Noto Color Emoji"
FALLBACK_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
APT_PACKAGE = "fonts-noto-color-emoji"
FONT_SIZE = 109  # the bitmap strike size of the CBDT font
OUT_SIZE = 128
OUT_DIR = Path(__file__).resolve().parent.parent / "assets" / "objects"


def find_font() -> Path:
    """Return the path of NotoColorEmoji.ttf, or exit with a clear message."""
    candidates: list[Path] = []
    if shutil.which("fc-match"):
        try:
            res = subprocess.run(
                ["fc-match", "-f", "%{file}", FONT_FAMILY],
                capture_output=True,
                text=True,
                check=False,
            )
            if res.returncode == 0 and res.stdout.strip():
                candidates.append(Path(res.stdout.strip()))
        except OSError:
            pass
    candidates.append(FALLBACK_FONT)
    for path in candidates:
        # fc-match always returns *some* font; accept only the emoji font.
        if "notocoloremoji" in path.name.lower() and path.is_file():
            return path
    sys.exit(
        f"error: font '{FONT_FAMILY}' not found (looked via fc-match and at "
        f"{FALLBACK_FONT}). Install it with: apt-get install {APT_PACKAGE}"
    )


def render(font: ImageFont.FreeTypeFont, codepoint: int) -> Image.Image:
    """Render one glyph and return a 128x128 RGBA image."""
    text = chr(codepoint)
    left, top, right, bottom = font.getbbox(text)
    pad = 8
    canvas = Image.new(
        "RGBA", (right - left + 2 * pad, bottom - top + 2 * pad), (0, 0, 0, 0)
    )
    ImageDraw.Draw(canvas).text(
        (pad - left, pad - top), text, font=font, embedded_color=True
    )
    bbox = canvas.getchannel("A").getbbox()
    if bbox is None:
        raise RuntimeError(f"glyph U+{codepoint:04X} rendered empty")
    glyph = canvas.crop(bbox)
    side = max(glyph.size)
    square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    square.paste(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
    return square.resize((OUT_SIZE, OUT_SIZE), Image.Resampling.LANCZOS)


def main() -> None:
    font_path = find_font()
    font = ImageFont.truetype(str(font_path), FONT_SIZE)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, codepoint in OBJECTS:
        img = render(font, codepoint)
        out = OUT_DIR / f"{name}.png"
        # No pnginfo, no timestamps: output depends only on pixels + Pillow/zlib.
        img.save(out, format="PNG", optimize=True)
        print(f"U+{codepoint:04X} -> {out}")


if __name__ == "__main__":
    main()
