from __future__ import annotations

import datetime as dt
import re

import zxingcpp

from gateway.inquiries import answers
from gateway.inquiries.letter import (
    QR_SIZE_MM,
    qr_code,
    render_letter,
    render_verification_page,
)
from gateway.inquiries.status import AnswerStatus, Verification, check, sign_status_list
from tests.gateway.inquiries.factories import (
    APPLICANT,
    COUNTERPARTY,
    ISSUED,
    STATUS_URI,
    key_set,
    transfer_answer,
    with_manual_check,
)

KEYS = key_set()
ANSWER = with_manual_check(transfer_answer(failed=("dues",)))
TOKEN = answers.sign(ANSWER, KEYS)
URL = "e.shiraz.ir/v/9848759027760368"
REASONS = {
    "dues": "عوارض نوسازی سال ۱۴۰۴ به مبلغ ۱۲٬۵۰۰٬۰۰۰ ریال پرداخت نشده است "
    "(unpaid renewal duty, 1404, 12,500,000 rials)"
}
LETTER = render_letter(
    ANSWER, TOKEN, municipality="شهرداری شیراز", verification_url=URL, reasons=REASONS
)
PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def _rasterize(page: str, pixels_per_module: int = 4) -> tuple[bytes, int]:
    """The letter's QR as segno drew it, from the SVG path itself: each "h" run is a row of
    dark modules at the pen's position (M absolute, m relative, coordinates in modules)."""
    svg = re.search(r"<svg[^>]*>.*?</svg>", page, re.S)
    assert svg is not None
    view = re.search(r'viewBox="0 0 ([0-9.]+) ', svg[0])
    scale = re.search(r"scale\(([0-9.]+)\)", svg[0])
    path = re.search(r' d="([^"]+)"', svg[0])
    assert view
    assert scale
    assert path
    size = round(float(view[1]) / float(scale[1]))
    dark: set[tuple[int, int]] = set()
    x = y = 0.0
    for command, a, b in re.findall(r"([Mmh])(-?[0-9.]+)(?: (-?[0-9.]+))?", path[1]):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        else:
            for column in range(int(x), int(x + float(a))):
                dark.add((column, int(y)))
            x += float(a)
    width = size * pixels_per_module
    image = bytearray(b"\xff" * width * width)
    for column, row in dark:
        for dy in range(pixels_per_module):
            start = (row * pixels_per_module + dy) * width + column * pixels_per_module
            image[start : start + pixels_per_module] = b"\x00" * pixels_per_module
    return bytes(image), width


def test_the_qr_on_the_letter_decodes_to_the_exact_answer_which_verifies() -> None:
    image, width = _rasterize(LETTER)
    view = memoryview(image).cast("B", (width, width))
    found = zxingcpp.read_barcodes(view, formats=zxingcpp.BarcodeFormat.QRCode)
    assert [barcode.text for barcode in found] == [TOKEN]
    assert answers.verify(found[0].text, KEYS.verification_keys).answer == ANSWER


def test_the_qr_is_printed_four_centimetres_wide() -> None:
    modules = qr_code(TOKEN).symbol_size(border=0)[0]
    svg = re.search(r'<svg width="([0-9.]+)mm"', LETTER)
    assert svg is not None
    assert abs(float(svg[1]) - QR_SIZE_MM * (modules + 8) / modules) < 1e-6
    assert modules <= 93  # version 19 for this long answer: 0.43 mm a module


def test_the_letter_is_persian_right_to_left_with_jalali_dates_and_every_check() -> None:
    assert '<html lang="fa" dir="rtl">' in LETTER
    assert "شهرداری شیراز" in LETTER
    assert "۱۴۰۵/۰۸/۱۲ ۱۳:۰۰" in LETTER  # issued, Tehran time
    assert "۱۴۰۵/۰۹/۱۲ ۱۳:۰۰" in LETTER  # valid for 30 days (Aban has 30)
    assert "۱۴۰۵/۰۸/۰۹ ۱۳:۰۰" in LETTER  # the engineer's decision, three days before
    assert "دارای مانع" in LETTER
    for label in ("تسویه عوارض", "انطباق ساختمان با پروانه", "بازداشت", "ثبت احوال", "مهندس"):
        assert label in LETTER
    assert REASONS["dues"] in LETTER
    assert "۱۲٬۵۰۰٬۰۰۰ ریال" in LETTER
    assert URL in LETTER
    assert "9848 7590 2776 0368" in LETTER


def test_the_pages_need_no_network_and_run_no_script() -> None:
    verification = Verification(True, AnswerStatus.VALID, ANSWER, KEYS.current.kid)
    for page in (LETTER, render_verification_page(verification, municipality="شیراز")):
        lowered = page.lower()
        for forbidden in ("<script", "src=", "href=", "url(", "@import", "<link", "javascript:"):
            assert forbidden not in lowered
        assert "default-src 'none'" in page


def test_no_national_id_appears_in_clear_anywhere() -> None:
    status_token = sign_status_list(
        {}, uri=STATUS_URI, issuer="shiraz.ir", keys=KEYS, now=ISSUED, size=200_000
    )
    result = check(TOKEN, KEYS.verification_keys, status_token, ISSUED + dt.timedelta(hours=1))
    page = render_verification_page(result, municipality="شهرداری شیراز")
    image, width = _rasterize(LETTER)
    qr_text = zxingcpp.read_barcodes(memoryview(image).cast("B", (width, width)))[0].text
    assert result.status is AnswerStatus.VALID
    for national_id in (APPLICANT, COUNTERPARTY):
        for text in (TOKEN, qr_text, LETTER, page):
            assert national_id not in text
            assert national_id.translate(PERSIAN) not in text
    assert "******4561" in page
    assert "******4326" in page
    assert "******4561" in LETTER


def test_the_verification_page_says_authenticity_status_verdict_and_code() -> None:
    superseded = Verification(True, AnswerStatus.SUPERSEDED, ANSWER, KEYS.current.kid)
    page = render_verification_page(superseded, municipality="شهرداری شیراز")
    assert "AUTHENTIC" in page
    assert "SUPERSEDED" in page
    assert "NOT CLEAR" in page
    assert "9848 7590 2776 0368" in page
    forged = render_verification_page(
        Verification(False, reason="the signature does not match"), municipality="شیراز"
    )
    assert "NOT AUTHENTIC" in forged
    assert "9848" not in forged


def test_hostile_text_renders_as_text() -> None:
    attack = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
    hostile_answer = transfer_answer(failed=("dues",), partner=attack, issuer=attack)
    page = render_letter(
        hostile_answer,
        answers.sign(hostile_answer, KEYS),
        municipality=attack,
        verification_url=attack,
        reasons={"dues": attack},
    )
    verification = render_verification_page(Verification(False, reason=attack), municipality=attack)
    for html in (page, verification):
        assert "<script" not in html
        assert "<img" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img" in html
