"""Printable shipping labels: a 4 x 6 inch PDF with the addresses and a Code 128 barcode.

:func:`render_label` is what :class:`~orderkit.adapters.memory_carrier.MemoryCarrier`
prints, and what an adapter for a carrier that sells no printable label can use.
It needs the ``labels`` extra (reportlab): ``pip install 'orderkit[labels]'``.

The page is 288 x 432 points (4 x 6 inches, the common thermal-printer size). From
top to bottom it shows the carrier and service, the sender, the ship-to address, the
parcel count and total weight, the shop's reference, and the tracking number as a
Code 128 barcode with the number printed under it. The barcode's narrowest bar is as
wide as the page allows, up to 2 points (about 5.5 pixels at 200 dpi), so tracking
numbers of up to about 30 characters scan reliably from a 200-dpi print or raster.

The output is deterministic: equal inputs give byte-identical PDFs (no timestamps,
no random document id), so a label can be compared, cached or stored by content.
Text is set in the PDF standard fonts (Helvetica), which cover Western European
scripts; characters outside them print as blanks.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from orderkit.domain.carrier import Parcel
from orderkit.domain.values import (
    MAX_ID_LENGTH,
    MAX_NOTE_LENGTH,
    MAX_TEXT_LENGTH,
    Address,
    check_text,
)
from orderkit.errors import InvalidField, MissingExtra, ValueTooLong

if TYPE_CHECKING:  # pragma: no cover - typing only
    from reportlab.pdfgen.canvas import Canvas

__all__ = ["LABEL_SIZE", "render_label"]

LABEL_SIZE = (288.0, 432.0)
"""The label's page size in points (width, height): 4 x 6 inches."""

_WIDTH, _HEIGHT = LABEL_SIZE
_MARGIN = 12.0
_INNER = _WIDTH - 2 * _MARGIN
_MAX_BAR = 2.0  # points per module: wide enough to scan, narrow enough to fit 12 characters
_QUIET_MODULES = 10  # the quiet zone Code 128 needs on each side
_BARCODE_HEIGHT = 80.0
_REGULAR, _BOLD = "Helvetica", "Helvetica-Bold"
_SMALLEST = 6.0  # the smallest type size used for addresses


def render_label(
    *,
    carrier: str,
    service: str,
    tracking_number: str,
    ship_to: Address,
    ship_from: str,
    parcels: Sequence[Parcel],
    reference: str,
) -> bytes:
    """A one-page 4 x 6 inch PDF shipping label, as bytes (see the module docstring).

    ``ship_from`` is the sender as free text (newlines separate its lines);
    ``reference`` is the shop's own reference (order and shipment ids, say).

    Raises :class:`~orderkit.errors.InvalidField` (or another
    :class:`~orderkit.errors.InvalidInput`) for blank or overlong text, a
    ``ship_to`` that is not an :class:`~orderkit.domain.values.Address`, no parcels,
    or a tracking number with characters a Code 128 barcode cannot hold (only
    printable ASCII), and :class:`~orderkit.errors.MissingExtra` when reportlab is
    not installed.
    """
    check_text(carrier, field="carrier", limit=MAX_ID_LENGTH)
    check_text(service, field="service", limit=MAX_ID_LENGTH)
    check_text(tracking_number, field="tracking_number", limit=MAX_ID_LENGTH)
    if not all(" " <= char <= "~" for char in tracking_number):
        raise InvalidField(
            "must be printable ASCII to fit in a Code 128 barcode",
            field="tracking_number",
            value=tracking_number,
        )
    if not isinstance(ship_to, Address):
        raise InvalidField(
            f"must be an Address, got {type(ship_to).__name__}", field="ship_to", value=ship_to
        )
    _check_plain_text(ship_from, "ship_from", MAX_NOTE_LENGTH)
    _check_plain_text(reference, "reference", MAX_TEXT_LENGTH)
    if isinstance(parcels, (str, bytes)) or not isinstance(parcels, Sequence):
        raise InvalidField("must be a list of Parcel", field="parcels", value=parcels)
    if not parcels or not all(isinstance(parcel, Parcel) for parcel in parcels):
        raise InvalidField("needs at least one Parcel, and only Parcels", field="parcels")

    try:
        from reportlab.pdfgen.canvas import Canvas
    except ImportError:
        raise MissingExtra(
            "shipping labels need the labels extra: pip install 'orderkit[labels]'"
        ) from None

    buffer = io.BytesIO()
    # invariant=1: a fixed creation date and document id, so equal labels are equal bytes
    pdf = Canvas(buffer, pagesize=LABEL_SIZE, invariant=1, pageCompression=1)
    pdf.setTitle(f"{carrier} {service} label {tracking_number}")
    pdf.setAuthor("orderkit")
    pdf.setSubject(reference)

    _draw_header(pdf, carrier, service)
    _draw_sender(pdf, ship_from)
    _draw_recipient(pdf, ship_to)
    _draw_details(pdf, parcels, reference)
    _draw_barcode(pdf, tracking_number)

    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _check_plain_text(value: object, field: str, limit: int) -> None:
    """Like :func:`check_text`, without screening for card numbers: the sender and the
    reference are the shop's own text and ids, and a numeric id passes the Luhn check
    one time in ten."""
    if not isinstance(value, str):
        raise InvalidField(f"must be text, got {type(value).__name__}", field=field, value=value)
    if len(value) > limit:
        raise ValueTooLong(
            f"is {len(value)} characters long; the limit is {limit}", field=field, value=value
        )
    if not value.strip():
        raise InvalidField("must not be empty", field=field, value=value)


# -- the parts of the page, top to bottom -------------------------------------------------------


def _draw_header(pdf: Canvas, carrier: str, service: str) -> None:
    top = _HEIGHT - _MARGIN
    pdf.setFillGray(0)
    pdf.rect(_MARGIN, top - 34, _INNER, 34, stroke=0, fill=1)
    pdf.setFillGray(1)
    service_text = _fit(service.upper(), _BOLD, 18, _INNER / 2 - 8)
    pdf.setFont(_BOLD, 18)
    pdf.drawRightString(_WIDTH - _MARGIN - 8, top - 24, service_text)
    carrier_text = _fit(carrier.upper(), _BOLD, 14, _INNER / 2 - 8)
    pdf.setFont(_BOLD, 14)
    pdf.drawString(_MARGIN + 8, top - 22, carrier_text)
    pdf.setFillGray(0)


def _draw_sender(pdf: Canvas, ship_from: str) -> None:
    lines = [line.strip() for line in ship_from.splitlines() if line.strip()]
    _caption(pdf, "FROM", 372)
    _block(pdf, lines, top=362, bottom=328, size=9, first_bold=False)
    _rule(pdf, 322)


def _draw_recipient(pdf: Canvas, ship_to: Address) -> None:
    town = " ".join(part for part in (ship_to.postal_code, ship_to.city) if part)
    lines = [ship_to.recipient, ship_to.line1]
    if ship_to.line2:
        lines.append(ship_to.line2)
    lines.append(town)
    if ship_to.region:
        lines.append(ship_to.region)
    lines.append(ship_to.country)
    _caption(pdf, "SHIP TO", 310)
    _block(pdf, lines, top=298, bottom=200, size=14, first_bold=True)
    _rule(pdf, 194)


def _draw_details(pdf: Canvas, parcels: Sequence[Parcel], reference: str) -> None:
    grams = sum(parcel.weight_grams for parcel in parcels)
    kilograms = format((Decimal(grams) / 1000).normalize(), "f")
    count = len(parcels)
    pdf.setFont(_BOLD, 11)
    pdf.drawString(_MARGIN, 178, f"{count} parcel{'s' if count != 1 else ''}")
    pdf.drawRightString(_WIDTH - _MARGIN, 178, f"{kilograms} kg")
    pdf.setFont(_REGULAR, 9)
    pdf.drawString(_MARGIN, 162, _fit(f"Ref: {' '.join(reference.split())}", _REGULAR, 9, _INNER))
    _rule(pdf, 154)


def _draw_barcode(pdf: Canvas, tracking_number: str) -> None:
    from reportlab.graphics.barcode.code128 import Code128

    modules = Code128(tracking_number, barWidth=1, quiet=0, humanReadable=False).width
    bar = min(_MAX_BAR, _INNER / (modules + 2 * _QUIET_MODULES))
    quiet = bar * _QUIET_MODULES
    barcode = Code128(
        tracking_number,
        barWidth=bar,
        barHeight=_BARCODE_HEIGHT,
        quiet=1,
        lquiet=quiet,
        rquiet=quiet,
        humanReadable=False,
    )
    _caption(pdf, "TRACKING NUMBER", 142)
    barcode.drawOn(pdf, (_WIDTH - barcode.width) / 2, 52)
    size = _shrink(tracking_number, _BOLD, 14, _INNER)
    pdf.setFont(_BOLD, size)
    pdf.drawCentredString(_WIDTH / 2, 32, tracking_number)


# -- text helpers -------------------------------------------------------------------------------


def _caption(pdf: Canvas, text: str, y: float) -> None:
    pdf.setFont(_BOLD, 7)
    pdf.drawString(_MARGIN, y, text)


def _rule(pdf: Canvas, y: float) -> None:
    pdf.setLineWidth(1)
    pdf.line(_MARGIN, y, _WIDTH - _MARGIN, y)


def _block(
    pdf: Canvas, lines: Sequence[str], *, top: float, bottom: float, size: float, first_bold: bool
) -> None:
    """Draw ``lines`` wrapped to the page width, shrinking the type until they fit."""
    while True:
        leading = size * 1.2
        wrapped: list[tuple[str, str]] = []
        for index, line in enumerate(lines):
            font = _BOLD if first_bold and index == 0 else _REGULAR
            wrapped.extend((font, part) for part in _wrap(line, font, size))
        if top - size - (len(wrapped) - 1) * leading >= bottom or size <= _SMALLEST:
            break
        size -= 0.5
    y = top - size
    for font, part in wrapped:
        if y < bottom:
            break  # only with absurd input at the smallest size: cut rather than overlap
        pdf.setFont(font, size)
        pdf.drawString(_MARGIN, y, part)
        y -= leading


def _wrap(text: str, font: str, size: float) -> list[str]:
    """``text`` broken into lines no wider than the page: at spaces, or anywhere in a word
    too long for one line."""
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines: list[str] = []
    for line in simpleSplit(text, font, size, _INNER):
        while stringWidth(line, font, size) > _INNER:
            cut = len(line) - 1
            while cut > 1 and stringWidth(line[:cut], font, size) > _INNER:
                cut -= 1
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    return lines


def _shrink(text: str, font: str, size: float, width: float) -> float:
    """The largest size up to ``size`` at which ``text`` fits in ``width``."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    return float(min(size, size * width / max(stringWidth(text, font, size), 1e-6)))


def _fit(text: str, font: str, size: float, width: float) -> str:
    """``text``, cut with an ellipsis when it is wider than ``width`` at ``size``."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "...", font, size) > width:
        text = text[:-1]
    return text + "..."
