"""Drawing large-print Japanese pages with reportlab, the font embedded.

The font is IPAex Gothic, shipped in fonts/ (IPA Font License v1.0): a TrueType font, so
reportlab embeds the glyphs used (a subset) and the page prints the same on a machine with
no Japanese font. reportlab's built-in CID fonts (HeiseiKakuGo) would not be embedded."""

from __future__ import annotations

import io
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Group, Rect
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

FONT = "IPAexGothic"
FONT_FILE = Path(__file__).with_name("fonts") / "ipaexg.ttf"
# Large print for older readers: no text on paper is smaller than this.
BODY_PT = 14
# Space after each line, as a share of its size.
LINE_GAP = 0.35


@cache
def _register_font() -> str:
    pdfmetrics.registerFont(TTFont(FONT, str(FONT_FILE)))
    return FONT


def wrap(text: str, size: float, width: float) -> list[str]:
    """`text` in lines no wider than `width` at `size` points. Japanese has no spaces to
    break at, so lines break between any two characters (newlines are kept)."""
    font = _register_font()
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for char in paragraph:
            if line and pdfmetrics.stringWidth(line + char, font, size) > width:
                lines.append(line)
                line = ""
            line += char
        lines.append(line)
    return lines


class Page:
    """A canvas written top to bottom: each call moves the cursor down."""

    def __init__(self, canvas: Canvas, width: float, height: float, margin: float) -> None:
        self.canvas, self.width, self.height, self.margin = canvas, width, height, margin
        self.y = height - margin

    @property
    def text_width(self) -> float:
        return self.width - 2 * self.margin

    def room(self) -> float:
        return self.y - self.margin

    def text(self, text: str, size: float = BODY_PT, *, indent: float = 0,
             width: float | None = None, gap: float = LINE_GAP) -> None:
        self.canvas.setFont(_register_font(), size)
        for line in wrap(text, size, (width or self.text_width) - indent):
            self.y -= size
            self.canvas.drawString(self.margin + indent, self.y, line)
            self.y -= size * gap

    def rule(self, space: float = 3 * mm) -> None:
        self.y -= space
        self.canvas.setLineWidth(0.8)
        self.canvas.line(self.margin, self.y, self.width - self.margin, self.y)
        self.y -= space

    def qr(self, data: str, size: float, x: float, y: float) -> None:
        """A QR code `size` wide with its lower left corner at (x, y). Its squares are drawn
        straight on the canvas: renderPDF would name an unembedded Helvetica in the file."""
        widget = QrCodeWidget(data, barLevel="M")
        left, bottom, right, top = widget.getBounds()
        scale = size / max(right - left, top - bottom)
        self.canvas.saveState()
        self.canvas.setFillColorRGB(0, 0, 0)
        for square in _rects(widget.draw()):
            if square.fillColor is not None and square.fillColor.red < 0.5:
                self.canvas.rect(x + (square.x - left) * scale, y + (square.y - bottom) * scale,
                                 square.width * scale, square.height * scale, stroke=0, fill=1)
        self.canvas.restoreState()


def _rects(node: Group | Rect) -> Iterator[Rect]:
    if isinstance(node, Rect):
        yield node
    elif isinstance(node, Group):
        for child in node.contents:
            yield from _rects(child)


def measure_lines(texts: list[tuple[str, float]], width: float) -> float:
    """The height `Page.text` would take for these (text, size) pairs."""
    return sum(len(wrap(text, size, width)) * size * (1 + LINE_GAP) for text, size in texts)


def document(title: str, pagesize: tuple[float, float], margin: float
             ) -> tuple[io.BytesIO, Canvas, Iterator[Page]]:
    """A new PDF in memory, its canvas, and an endless supply of pages (each next() after
    the first ends the page before)."""
    _register_font()
    buffer = io.BytesIO()
    # Without an initial font reportlab names Helvetica on every page, unembedded.
    canvas = Canvas(buffer, pagesize=pagesize, pageCompression=1, initialFontName=FONT,
                    initialFontSize=BODY_PT)
    canvas.setTitle(title)
    canvas.setAuthor("divide-support")

    def pages() -> Iterator[Page]:
        first = True
        while True:
            if not first:
                canvas.showPage()
            first = False
            yield Page(canvas, pagesize[0], pagesize[1], margin)

    return buffer, canvas, pages()
