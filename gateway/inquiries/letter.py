"""The printable answer letter and the public verification page, as self-contained HTML:
Persian, right to left, Jalali dates, no script and no external resource, so that a page
prints with no network and shows the same on every browser.

The letter's QR code holds the compact JWS itself (verifiable offline with the published
keys), drawn as inline SVG by segno at error-correction level L. Level L because the answer is
long (all of issue 9's claims make a realistic 7-check property-transfer answer about 660
characters: QR version 18, 89 modules) and the code is printed 4 cm wide: at L every module
is 40/89 ≈ 0.45 mm, where M would need version 20 (97 modules, 0.41 mm). A letter is laser-
printed and kept in a file, so wide modules matter more to a phone's camera than the extra
recovery of M. The quiet zone (4 modules) is printed outside the 4 cm.

Every value that reaches the page goes through `html.escape`; the SVG comes from segno's own
writer over the code's matrix, never from input.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import jdatetime
import segno

from gateway.inquiries.answers import Answer, Outcome, Verdict
from gateway.inquiries.status import AnswerStatus, Verification
from gateway.inquiries.tracking import format_tracking_code

__all__ = [
    "QR_ERROR_LEVEL",
    "QR_SIZE_MM",
    "Labels",
    "jalali",
    "masked",
    "qr_code",
    "qr_svg",
    "render_letter",
    "render_verification_page",
]

QR_ERROR_LEVEL = "l"
QR_SIZE_MM = 40
IRAN = ZoneInfo("Asia/Tehran")
_PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'"
_STYLE = """
body { font-family: Vazirmatn, Tahoma, sans-serif; margin: 2cm; color: #000; }
h1 { font-size: 1.4em; margin: 0 0 .2em; }
table { border-collapse: collapse; width: 100%; margin: 1em 0; }
th, td { border: 1px solid #444; padding: .3em .5em; text-align: right; vertical-align: top; }
.ltr { direction: ltr; unicode-bidi: isolate; }
.verdict { font-size: 1.3em; font-weight: bold; }
.qr { float: left; text-align: center; margin: 0 0 1em 1em; }
.qr svg { display: block; }
.small { font-size: .85em; }
@media print { body { margin: 1.5cm; } }
"""


@dataclass(frozen=True, slots=True)
class Labels:
    """Persian names for the codes inside an answer; an unknown code is shown as itself."""

    kinds: Mapping[str, str] = field(
        default_factory=lambda: {
            "PROPERTY_TRANSFER": "نقل و انتقال ملک",
            "MORTGAGE": "ترهین",
            "PROPERTY_STATUS": "وضعیت ملک",
        }
    )
    checks: Mapping[str, str] = field(
        default_factory=lambda: {
            "dues": "تسویه عوارض شهرداری (مفاصاحساب)",
            "cert": "گواهی پایان کار یا عدم خلاف",
            "comp": "گواهی پایان کار",
            "viol": "نبود تخلف رسیدگی‌نشده",
            "a100": "نبود رأی اجرانشده کمیسیون ماده ۱۰۰",
            "deed": "انطباق سند با مالکان",
            "seiz": "نبود بازداشت بر سند",
            "live": "در قید حیات بودن متقاضی",
            "bldg": "انطباق ساختمان با پروانه",
            "use": "کاربری و تراکم",
        }
    )
    authorities: Mapping[str, str] = field(
        default_factory=lambda: {
            "rev": "درآمد",
            "pln": "شهرسازی",
            "lrg": "سازمان ثبت اسناد و املاک",
            "crg": "ثبت احوال",
        }
    )
    dues: Mapping[str, str] = field(
        default_factory=lambda: {"ren": "عوارض نوسازی", "wst": "عوارض پسماند", "oth": "سایر"}
    )
    roles: Mapping[str, str] = field(
        default_factory=lambda: {"eng": "مهندس ناظر", "off": "کارشناس", "mgr": "مدیر"}
    )


_VERDICTS = {Verdict.CLEAR: "بلامانع (CLEAR)", Verdict.NOT_CLEAR: "دارای مانع (NOT CLEAR)"}
_OUTCOMES = {Outcome.PASS: "تأیید", Outcome.FAIL: "رد", Outcome.INFO: "گزارش"}
_STATUSES = {
    AnswerStatus.VALID: "معتبر (VALID)",
    AnswerStatus.EXPIRED: "منقضی (EXPIRED)",
    AnswerStatus.SUPERSEDED: "جایگزین‌شده با پاسخ جدیدتر (SUPERSEDED)",
    AnswerStatus.REVOKED: "ابطال‌شده (REVOKED)",
}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _ltr(value: object) -> str:
    """Latin-script values (codes, plates, addresses) kept left to right inside Persian."""
    return f'<bdi class="ltr" dir="ltr">{_e(value)}</bdi>'


def persian_digits(text: str) -> str:
    return text.translate(_PERSIAN_DIGITS)


def jalali(moment: dt.datetime, *, time: bool = True) -> str:
    """A moment as Iran reads it: Solar Hijri date (and time), Iran's clock, Persian digits."""
    local = jdatetime.datetime.fromgregorian(datetime=moment.astimezone(IRAN))
    return persian_digits(str(local.strftime("%Y/%m/%d %H:%M" if time else "%Y/%m/%d")))


def rials(amount: int) -> str:
    return persian_digits(f"{amount:,}").replace(",", "٬") + " ریال"


def masked(last_four: str | None) -> str:
    """A masked national ID as printed: six hidden digits, then the last four."""
    return "—" if last_four is None else "******" + last_four


def qr_code(token: str) -> segno.QRCode:
    """The QR code of a compact JWS: byte mode, level L, the smallest version that holds it."""
    return segno.make(token, error=QR_ERROR_LEVEL, mode="byte", micro=False, boost_error=False)


def qr_svg(token: str, size_mm: float = QR_SIZE_MM) -> str:
    """Inline SVG whose modules span `size_mm` millimetres, plus the quiet zone around."""
    code = qr_code(token)
    modules = code.symbol_size(border=0)[0]
    return str(
        code.svg_inline(
            scale=size_mm / modules, unit="mm", border=4, dark="#000", svgclass="qr-code"
        )
    )


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="fa" dir="rtl">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _label(labels: Mapping[str, str], code: str) -> str:
    return _e(labels.get(code, code))


def _property(answer: Answer) -> str:
    parts = []
    if answer.renewal_code is not None:
        parts.append(f"کد نوسازی {_ltr(answer.renewal_code)}")
    if answer.registry_plate is not None:
        parts.append(f"پلاک ثبتی {_ltr(answer.registry_plate)}")
    return "، ".join(parts)


def render_letter(
    answer: Answer,
    token: str,
    *,
    municipality: str,
    verification_url: str,
    reasons: Mapping[str, str] | None = None,
    labels: Labels | None = None,
) -> str:
    """The letter a partner prints: `token` is the answer's compact JWS (the QR holds it),
    `reasons` the words for each failed check by check name (Persian, English after it),
    `verification_url` the short address printed under the code."""
    labels = labels or Labels()
    reasons = reasons or {}
    rows = []
    for check in answer.checks:
        role = (
            f'<br><span class="small">تأیید: {_label(labels.roles, check.officer_role)}</span>'
            if check.officer_role is not None
            else ""
        )
        rows.append(
            f"<tr><td>{_label(labels.checks, check.name)}</td>"
            f"<td>{_label(labels.authorities, check.authority)}</td>"
            f"<td>{_e(_OUTCOMES[check.outcome])}{role}</td>"
            f"<td>{_e(jalali(check.read_at))}</td>"
            f"<td>{_e(reasons.get(check.name, ''))}</td></tr>"
        )
    dues = ""
    if answer.outstanding:
        items = "".join(
            f"<li>{_label(labels.dues, due.kind)} سال {_e(persian_digits(str(due.period)))}: "
            f"{_e(rials(due.amount))}</li>"
            for due in answer.outstanding
        )
        dues = f"<h2>بدهی‌های پرداخت‌نشده</h2>\n<ul>{items}</ul>"
    supersedes = (
        f"<p>این پاسخ جایگزین پاسخ {_ltr(answer.supersedes)} است.</p>"
        if answer.supersedes is not None
        else ""
    )
    body = f"""<header>
<div class="qr">{qr_svg(token)}<div class="small">{_ltr(verification_url)}</div></div>
<h1>{_e(municipality)}</h1>
<p>پاسخ استعلام {_label(labels.kinds, answer.kind)}</p>
<p>کد پیگیری: {_ltr(format_tracking_code(answer.tracking_code))}</p>
<p>تاریخ صدور: {_e(jalali(answer.issued_at))} — اعتبار تا: {_e(jalali(answer.expires_at))}</p>
</header>
<p>ملک: {_property(answer)}</p>
<p>متقاضی: کد ملی {_ltr(masked(answer.applicant))}؛
طرف معامله: کد ملی {_ltr(masked(answer.counterparty))}؛
درخواست‌کننده: {_ltr(answer.partner)}</p>
<p class="verdict">نتیجه: {_e(_VERDICTS[answer.verdict])}</p>
<table>
<thead><tr><th>بررسی</th><th>مرجع</th><th>نتیجه</th><th>زمان خواندن داده</th><th>دلیل</th></tr>
</thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
{dues}
{supersedes}
<p class="small">این پاسخ با امضای دیجیتال شهرداری صادر شده است؛ کد QR خودِ پاسخ امضاشده است
و بدون اینترنت با کلیدهای عمومی شهرداری قابل بررسی است.
شناسه پاسخ: {_ltr(answer.answer_id)}</p>"""
    return _page(f"پاسخ استعلام {format_tracking_code(answer.tracking_code)}", body)


def render_verification_page(verification: Verification, *, municipality: str) -> str:
    """What anyone sees at the verification address: authenticity, status, verdict, tracking
    code and property, identities masked; no login, no script."""
    if not verification.authentic or verification.answer is None:
        reason = verification.reason or "امضا معتبر نیست"
        body = (
            f"<h1>{_e(municipality)}</h1>\n"
            '<p class="verdict">این پاسخ اصیل نیست (NOT AUTHENTIC).</p>\n'
            f'<p class="small">{_ltr(reason)}</p>'
        )
        return _page("بررسی پاسخ استعلام", body)
    answer = verification.answer
    status = (
        _STATUSES[verification.status]
        if verification.status is not None
        else "نامعلوم: فهرست وضعیت در دسترس نیست"
    )
    labels = Labels()
    body = f"""<h1>{_e(municipality)}</h1>
<p class="verdict">این پاسخ اصیل است (AUTHENTIC) — وضعیت: {_e(status)}</p>
<table>
<tr><th>کد پیگیری</th><td>{_ltr(format_tracking_code(answer.tracking_code))}</td></tr>
<tr><th>نوع استعلام</th><td>{_label(labels.kinds, answer.kind)}</td></tr>
<tr><th>نتیجه</th><td>{_e(_VERDICTS[answer.verdict])}</td></tr>
<tr><th>ملک</th><td>{_property(answer)}</td></tr>
<tr><th>متقاضی</th><td>{_ltr(masked(answer.applicant))}</td></tr>
<tr><th>طرف معامله</th><td>{_ltr(masked(answer.counterparty))}</td></tr>
<tr><th>تاریخ صدور</th><td>{_e(jalali(answer.issued_at))}</td></tr>
<tr><th>اعتبار تا</th><td>{_e(jalali(answer.expires_at))}</td></tr>
</table>"""
    return _page("بررسی پاسخ استعلام", body)
