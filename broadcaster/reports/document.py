"""The report as a commune sends it up: the official form (Nghị định 30/2020/NĐ-CP) in XLSX and DOCX.

``official_form`` builds the text once — issuing body, Quốc hiệu and Tiêu
ngữ, số/ký hiệu left blank for the clerk, place and date, title, a generated
summary, the results tables, the rules and the signature block — and
``write_xlsx`` (a "Báo cáo" sheet before the data sheets) and ``write_docx``
lay it out: Times New Roman, A4 landscape, one page wide, header rows
repeated on every page, wrapped cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..fileutil import atomic_path
from ..timeutil import local
from .build import Report
from .formats import (
    DATETIME,
    DECIMAL,
    INTEGER,
    MINUTES,
    PERCENT,
    TEXT,
    TOTALS_COLUMNS,
    cell_text,
    channel_row,
    header_lines,
    number_text,
    rule_lines,
    stations_view,
    topic_label,
    totals_row,
    views,
)
from .terms import (
    ANNOUNCEMENT,
    BEHIND,
    CHANNEL_LABELS,
    CHANNEL_ROW_LABELS,
    DONE,
    METRIC_LABELS,
    ON_TRACK,
    OUTSIDE_PLAN,
    SCHEDULED,
    SMS_ROW,
    STATUS_LABELS,
)

FONT = "Times New Roman"
NATIONAL_NAME = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"
ROMAN_QUARTERS = {1: "I", 2: "II", 3: "III", 4: "IV"}
RESULT_HEADINGS = ["STT", "Nội dung tuyên truyền", "Kênh", "Số đo", "Cần đạt trong kỳ", "Đã đạt", "Tỷ lệ",
                   "Cần đạt đến nay", "Còn thiếu", "Đánh giá"]
RESULT_KINDS = [INTEGER, TEXT, TEXT, TEXT, DECIMAL, DECIMAL, PERCENT, DECIMAL, DECIMAL, TEXT]
CHANNEL_HEADINGS = ["Kênh", "Buổi phát", "Lượt phát", "Phút nội dung", "Phút lên sóng", "SMS đã gửi",
                    "SMS đã đến", "Người được tiếp cận", "Lỗi"]
CHANNEL_FIELDS = ["sessions", "broadcasts", "content_minutes", "on_air_minutes", "sms_sent", "sms_delivered",
                  "people_reached", "failed"]
CHANNEL_KINDS = [TEXT, INTEGER, INTEGER, MINUTES, MINUTES, INTEGER, INTEGER, INTEGER, INTEGER]


@dataclass
class OfficialForm:
    body: list[str]  # the issuing body, e.g. ["ỦY BAN NHÂN DÂN", "XÃ PHƯỚC HÀ"]
    number: str  # số/ký hiệu with the number left blank
    place_date: str  # "Phước Hà, ngày 01 tháng 12 năm 2026"
    title: str
    subject: str
    plan_line: str
    basis: str
    summary: list[str]
    results: list[list[Any]]  # RESULT_HEADINGS rows
    channels: list[list[Any]]  # CHANNEL_HEADINGS rows, the total last
    notes: list[str]
    recipients: list[str]
    signers: list[list[str]] = field(default_factory=list)  # columns of lines: title, role, hint


def vietnamese_date(day) -> str:
    """"ngày 01 tháng 12 năm 2026": a leading zero on days below 10 and on months 1 and 2 (NĐ 30/2020)."""
    month = f"{day.month:02d}" if day.month < 3 else str(day.month)
    return f"ngày {day.day:02d} tháng {month} năm {day.year}"


def period_phrase(report: Report) -> str:
    p = report.period
    if p.kind == "month":
        return f"tháng {p.start.month} năm {p.start.year}"
    if p.kind == "quarter":
        return f"quý {ROMAN_QUARTERS[(p.start.month - 1) // 3 + 1]} năm {p.start.year}"
    if p.kind == "year":
        return f"năm {p.start.year}"
    span = f"từ ngày {p.start:%d/%m/%Y} đến ngày {p.end:%d/%m/%Y}"
    return f"cả kế hoạch ({span})" if p.kind == "plan" else span


def official_form(report: Report) -> OfficialForm:
    commune = report.commune.strip()
    body_name = f"XÃ {commune.upper()}" if commune else "XÃ ……………"
    today = local(report.as_of, report.timezone).date()
    place = commune or "……………"
    period = period_phrase(report)
    results = []
    for n, r in enumerate(report.targets, 1):
        channel = CHANNEL_LABELS[r.channel][0] + (f" (đài {r.station_code})" if r.station_code else "")
        results.append([n, topic_label(r.topic_code, r.topic_title, "vi") + (" *" if r.illustrative else ""),
                        channel, METRIC_LABELS[r.metric][0], r.target, r.achieved, r.percent, r.due, r.shortfall,
                        STATUS_LABELS[r.status][0]])
    channels = [_channel_cells(channel_row(x, CHANNEL_ROW_LABELS[x.key][0])) for x in report.channels]
    channels.append(_channel_cells(totals_row(report.total, "Tổng cộng")))
    if report.outside_plan is not None:
        channels.append(_channel_cells(channel_row(report.outside_plan, CHANNEL_ROW_LABELS[OUTSIDE_PLAN][0])))
    issued = f" ngày {report.plan_issued_on:%d/%m/%Y}" if report.plan_issued_on else ""
    issuer = f" của {report.plan_issuer}" if report.plan_issuer else ""
    body_sentence = f"Ủy ban nhân dân xã {commune}" if commune else "Ủy ban nhân dân xã"
    return OfficialForm(
        body=["ỦY BAN NHÂN DÂN", body_name],
        number="Số:        /BC-UBND",
        place_date=f"{place}, {vietnamese_date(today)}",
        title="BÁO CÁO",
        subject=f"Kết quả thông tin, tuyên truyền thực hiện Kế hoạch số {report.plan_code} kỳ {period}",
        plan_line=f"({report.plan_title})",
        basis=(f"Thực hiện Kế hoạch số {report.plan_code}{issued}{issuer} về {_plan_subject(report)}, "
               f"{body_sentence} báo cáo kết quả thông tin, tuyên truyền trên hệ thống truyền thanh và tin nhắn "
               f"SMS kỳ {period} (số liệu tính đến {local(report.as_of, report.timezone):%H:%M} "
               f"{vietnamese_date(today)}) như sau:"),
        summary=summary_paragraphs(report),
        results=results,
        channels=channels,
        notes=rule_lines(report, "vi"),
        recipients=["Nơi nhận:", "- UBND huyện (để báo cáo);", "- Lưu: VT."],
        signers=[["NGƯỜI LẬP BIỂU", "", "(Ký, ghi rõ họ tên)"],
                 ["TM. ỦY BAN NHÂN DÂN", "CHỦ TỊCH", "(Ký tên, đóng dấu)"]],
    )


def _channel_cells(row: list[Any]) -> list[Any]:
    """The form's channel columns out of a full channel-table row."""
    names = [name for name, _, _ in TOTALS_COLUMNS]
    return [row[0]] + [row[1 + names.index(name)] for name in CHANNEL_FIELDS]


def _plan_subject(report: Report) -> str:
    title = report.plan_title.strip()
    lowered = title[:1].lower() + title[1:]
    return lowered.removeprefix("kế hoạch ").strip() or "thông tin, tuyên truyền"


def summary_paragraphs(report: Report) -> list[str]:
    """What is done, what is behind and by how much — in a few sentences a clerk can keep or edit."""
    total = report.total
    rows = {x.key: x for x in report.channels}
    loudspeaker = rows[SCHEDULED].sessions + rows[ANNOUNCEMENT].sessions
    where = ", ".join(s.name or s.code for s in report.stations) or "đài truyền thanh xã"
    paragraphs = [
        f"Trong kỳ, {where} đã thực hiện {_n(total.sessions)} buổi phát có nội dung của kế hoạch "
        f"({_n(loudspeaker)} buổi phát trên loa, trong đó {_n(rows[ANNOUNCEMENT].sessions)} buổi thông báo; "
        f"{_n(rows[SMS_ROW].sessions)} đợt nhắn tin SMS), gồm {_n(total.broadcasts)} lượt phát tin với "
        f"{_m(total.content_minutes)} phút nội dung ({_m(total.on_air_minutes)} phút lên sóng); đã gửi "
        f"{_n(total.sms_sent)} tin nhắn SMS, trong đó {_n(total.sms_delivered)} tin đã đến người nhận. "
        f"Số người được tiếp cận: {_n(total.people_reached)} người."]
    if report.outside_plan is not None:
        paragraphs[0] += (f" Ngoài ra có {_n(report.outside_plan.sessions)} buổi phát không có nội dung của kế "
                          f"hoạch (như thông báo khẩn), {_m(report.outside_plan.on_air_minutes)} phút lên sóng, "
                          "không tính vào các số trên.")
    done = [r for r in report.targets if r.status == DONE]
    on_track = [r for r in report.targets if r.status == ON_TRACK]
    behind = sorted((r for r in report.targets if r.status == BEHIND),
                    key=lambda r: -((r.due - r.achieved) / r.target if r.target else 0))
    count = len(report.targets)
    if not count:
        paragraphs.append("Kế hoạch chưa có chỉ tiêu để so sánh.")
    else:
        text = f"Đã đạt {len(done)}/{count} chỉ tiêu của kỳ"
        if done:
            text += ": " + "; ".join(_target_phrase(r) for r in done[:4]) + ("; …" if len(done) > 4 else "")
        text += f". Đúng tiến độ {len(on_track)} chỉ tiêu."
        paragraphs.append(text)
        if behind:
            parts = [f"{_target_phrase(r)}; đến nay cần {number_text(r.due, 'vi')}, chậm "
                     f"{number_text(r.due - r.achieved, 'vi')}; còn thiếu {number_text(r.shortfall, 'vi')} "
                     "để đạt cả kỳ" for r in behind[:5]]
            more = f"; và {len(behind) - 5} chỉ tiêu khác (xem bảng)" if len(behind) > 5 else ""
            paragraphs.append(f"Chậm tiến độ {len(behind)} chỉ tiêu: " + " — ".join(parts) + more + ".")
        else:
            paragraphs.append("Không có chỉ tiêu nào chậm tiến độ.")
    problems = [(total.failed, "lượt lỗi"), (total.missed, "lượt bị lỡ"), (total.interrupted, "lượt bị ngắt"),
                (total.uncertain, "tin nhắn không rõ kết quả"), (total.sms_undelivered, "tin nhắn không đến"),
                (total.in_progress, "lượt chưa xong (đang chờ hoặc đang gửi)"),
                (total.cancelled, "tin nhắn đã hủy"), (total.skipped, "lượt bỏ qua")]
    named = [f"{_n(n)} {what}" for n, what in problems if n]
    paragraphs.append(("Tồn tại: " + ", ".join(named) + ".") if named
                      else "Không có lượt phát hoặc tin nhắn nào bị lỗi, bị lỡ hay chưa xong.")
    if report.illustrative:
        paragraphs.append("Các chỉ tiêu đánh dấu * là chỉ tiêu minh họa (văn bản kế hoạch gốc không nêu số), "
                          "không phải chỉ tiêu được giao.")
    return paragraphs


def _target_phrase(r) -> str:
    topic = r.topic_code or "toàn kế hoạch"
    return (f"{topic} – {METRIC_LABELS[r.metric][0]}: đạt {number_text(r.achieved, 'vi')}/{number_text(r.target, 'vi')} "
            f"({number_text(r.percent or 0, 'vi')}%)")


def _n(value: int) -> str:
    return number_text(value, "vi")


def _m(value: float) -> str:
    return number_text(value, "vi", fixed=True)


# --------------------------------------------------------------------------- xlsx

XLSX_FORMATS = {INTEGER: "0", MINUTES: "0.0", DECIMAL: "0.0", PERCENT: "0.0%", DATETIME: "dd/mm/yyyy hh:mm"}
# The form shows numbers the Vietnamese way wherever it is opened ([$-42A]: Vietnamese): 2.000 and 4,5.
FORM_FORMATS = {INTEGER: "[$-42A]#,##0", MINUTES: "[$-42A]#,##0.0", DECIMAL: "[$-42A]#,##0.0",
                PERCENT: "[$-42A]0.0%"}
CHARS_PER_UNIT = 1.25  # characters of 11 pt Times New Roman per column-width unit, in a table cell
PARAGRAPH_CHARS_PER_UNIT = 1.45  # the same in a wide merged paragraph (less lost to word wrapping)
FORM_WIDTHS = [6, 40, 17, 17, 11, 10, 9, 11, 10, 13]  # columns A..J of the "Báo cáo" sheet
SHEET_NAMES = {"stations": "Theo đài", "targets": "Chỉ tiêu", "topics": "Chủ đề", "channels": "Kênh", "log": "Nhật ký"}


def _page_setup(sheet, title_row: int | None) -> None:
    """A4 landscape, one page wide (as many pages tall as it takes), heading row on every page."""
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_options.horizontalCentered = True
    margins = sheet.page_margins
    margins.left, margins.right, margins.top, margins.bottom = 1.18, 0.59, 0.79, 0.79  # 30/15/20/20 mm
    margins.header = margins.footer = 0.3
    sheet.oddFooter.center.text = "Trang &P / &N"
    sheet.oddFooter.center.font = FONT
    if title_row:
        sheet.print_title_rows = f"{title_row}:{title_row}"


def _text_height(text: str, width: float, size: float = 12) -> float:
    """Row height (points) for ``text`` wrapped in ``width`` column units: merged cells do not grow."""
    per_line = width * PARAGRAPH_CHARS_PER_UNIT * 11 / size
    lines = sum(max(1, math.ceil(len(part) / per_line)) for part in str(text).split("\n"))
    return lines * size * 1.3 + 3


def write_xlsx(report: Report, path: Path, lang: str = "vi") -> None:
    """The "Báo cáo" sheet (the official form), then one data sheet per table and the period's log."""
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    _form_sheet(book, report)
    for view in views(report, lang):
        _data_sheet(book, report, view, lang)
    with atomic_path(Path(path)) as tmp:
        book.save(tmp)


def _styles():
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

    thin = Side(style="thin", color="000000")
    return {
        "font": lambda **kw: Font(name=FONT, size=kw.pop("size", 12), **kw),
        "wrap": lambda **kw: Alignment(wrap_text=True, vertical=kw.pop("vertical", "top"), **kw),
        "box": Border(left=thin, right=thin, top=thin, bottom=thin),
        "fill": PatternFill("solid", fgColor="DDEBF7"),
    }


def _form_sheet(book, report: Report) -> None:
    from openpyxl.utils import get_column_letter

    st = _styles()
    form = official_form(report)
    sheet = book.create_sheet("Báo cáo")
    sheet.sheet_view.showGridLines = False
    for col, width in enumerate(FORM_WIDTHS, 1):
        sheet.column_dimensions[get_column_letter(col)].width = width
    full = sum(FORM_WIDTHS)
    row = 1

    def put(r: int, first: int, last: int, value: Any, *, size: float = 12, bold: bool = False,
            italic: bool = False, underline: str | None = None, align: str = "center") -> None:
        if last > first:
            sheet.merge_cells(start_row=r, start_column=first, end_row=r, end_column=last)
        cell = sheet.cell(r, first, value)
        cell.font = st["font"](size=size, bold=bold, italic=italic, underline=underline)
        cell.alignment = st["wrap"](horizontal=align, vertical="center" if align == "center" else "top")

    put(row, 1, 4, form.body[0], size=12, bold=True)
    put(row, 5, 10, NATIONAL_NAME, size=12, bold=True)
    row += 1
    put(row, 1, 4, form.body[1], size=12, bold=True)
    put(row, 5, 10, MOTTO, size=13, bold=True, underline="single")
    row += 1
    put(row, 1, 4, "―――――――", size=10)
    row += 1
    put(row, 1, 4, form.number, size=13)
    put(row, 5, 10, form.place_date, size=13, italic=True)
    row += 2
    put(row, 1, 10, form.title, size=14, bold=True)
    row += 1
    put(row, 1, 10, form.subject, size=13, bold=True)
    sheet.row_dimensions[row].height = _text_height(form.subject, full * 0.9, 13)
    row += 1
    put(row, 1, 10, form.plan_line, size=12, italic=True)
    sheet.row_dimensions[row].height = _text_height(form.plan_line, full, 12)
    row += 2
    for text in [form.basis, "I. KẾT QUẢ THỰC HIỆN", *form.summary]:
        heading = text.startswith("I. ")
        put(row, 1, 10, text if heading else "      " + text, size=13, bold=heading, align="justify")
        sheet.row_dimensions[row].height = _text_height(text, full * 0.97, 13)
        row += 1
    row += 1
    # The short channel table first: the sheet repeats one heading row on every page, and it must be the
    # heading of the table that may run onto the next page (the results).
    put(row, 1, 10, "1. Tổng hợp theo kênh", size=13, bold=True, align="left")
    row += 1
    # The channel label spans A..B; the numbers take C..J.
    merged = [[r[0], None, *r[1:]] for r in form.channels]
    _table(sheet, row, [CHANNEL_HEADINGS[0], None, *CHANNEL_HEADINGS[1:]],
           [TEXT, TEXT, *CHANNEL_KINDS[1:]], merged, st, widths=FORM_WIDTHS, merge_first=True,
           total_rows=1 + (report.outside_plan is not None), formats=FORM_FORMATS)
    row += len(merged) + 2
    put(row, 1, 10, "2. Kết quả so với chỉ tiêu", size=13, bold=True, align="left")
    row += 1
    title_row = row
    _table(sheet, row, RESULT_HEADINGS, RESULT_KINDS, form.results, st, widths=FORM_WIDTHS, formats=FORM_FORMATS)
    row += len(form.results) + 2
    put(row, 1, 10, "II. CÁCH TÍNH SỐ LIỆU", size=13, bold=True, align="left")
    row += 1
    for text in form.notes:
        put(row, 1, 10, "- " + text, size=11, italic=True, align="justify")
        sheet.row_dimensions[row].height = _text_height(text, full, 11)
        row += 1
    row += 1
    signature_top = row
    for n, text in enumerate(form.recipients):
        put(signature_top + n, 1, 2, text, size=12 if n == 0 else 11, bold=n == 0, italic=n == 0, align="left")
    for (first, last), lines in zip([(3, 5), (7, 10)], form.signers, strict=True):
        for n, text in enumerate(lines):
            put(signature_top + n, first, last, text, size=13 if n < 2 else 12, bold=n < 2, italic=n == 2)
    sheet.row_dimensions[signature_top + 3].height = 60  # room to sign
    _page_setup(sheet, title_row)
    sheet.print_area = f"A1:J{signature_top + 4}"


def _table(sheet, top: int, headings: list, kinds: list[str], rows: list[list[Any]], st, *,
           widths: list[float] | None = None, merge_first: bool = False, total_rows: int = 0,
           formats: dict[str, str] = XLSX_FORMATS) -> None:
    """Bold boxed headings at ``top`` and boxed rows; numbers stay numbers with a matching format."""
    for col, heading in enumerate(headings, 1):
        cell = sheet.cell(top, col, heading)
        cell.font = st["font"](size=11, bold=True)
        cell.alignment = st["wrap"](horizontal="center", vertical="center")
        cell.border, cell.fill = st["box"], st["fill"]
    if merge_first:
        sheet.merge_cells(start_row=top, start_column=1, end_row=top, end_column=2)
    sheet.row_dimensions[top].height = 33
    for n, values in enumerate(rows, 1):
        r = top + n
        bold = n > len(rows) - total_rows
        for col, (value, kind) in enumerate(zip(values, kinds, strict=True), 1):
            cell = sheet.cell(r, col, value / 100 if kind == PERCENT and value is not None else value)
            cell.font = st["font"](size=11, bold=bold)
            cell.border = st["box"]
            cell.alignment = st["wrap"](horizontal="left" if kind == TEXT else "right", indent=1 if kind == TEXT
                                        else 0)
            if kind in formats:
                cell.number_format = formats[kind]
        if merge_first:
            sheet.merge_cells(start_row=r, start_column=1, end_row=r, end_column=2)
        if widths:
            spans = list(widths)
            if merge_first:
                spans[0] += spans[1]
            lines = max(math.ceil(len(cell_text(v, k, "vi")) / (spans[c] * CHARS_PER_UNIT - 1))
                        for c, (v, k) in enumerate(zip(values, kinds, strict=True))
                        if v is not None and not (merge_first and c == 1))
            sheet.row_dimensions[r].height = max(1, lines) * 14 + 3


def _data_sheet(book, report: Report, view, lang: str) -> None:
    from openpyxl.utils import get_column_letter

    st = _styles()
    sheet = book.create_sheet(SHEET_NAMES[view.key])
    header = header_lines(report, lang)
    for n, line in enumerate(header, 1):
        cell = sheet.cell(n, 1, line)
        cell.font = st["font"](size=13 if n == 1 else 11, bold=n == 1)
    cell = sheet.cell(len(header) + 1, 1, view.title)
    cell.font = st["font"](size=12, bold=True)
    top = len(header) + 3
    widths = []
    for col, kind in enumerate(view.kinds):
        cells = [cell_text(r[col], kind, lang) for r in view.rows]
        words = max(len(w) for w in view.headings[col].split())
        longest = max((len(c) for c in cells), default=0)
        widths.append(min(44 if kind == TEXT else 16, max(8, words + 2, longest + 2)))
    _table(sheet, top, view.headings, view.kinds, view.rows, st, widths=widths, total_rows=view.total_rows)
    for col, width in enumerate(widths, 1):
        sheet.column_dimensions[get_column_letter(col)].width = width
    sheet.freeze_panes = sheet.cell(row=top + 1, column=2)
    if view.key == "targets":
        row = top + len(view.rows) + 2
        for line in rule_lines(report, lang):
            sheet.merge_cells(start_row=row, start_column=1, end_row=row, end_column=len(view.headings))
            cell = sheet.cell(row, 1, line)
            cell.font = st["font"](size=10, italic=True)
            cell.alignment = st["wrap"](horizontal="justify")
            sheet.row_dimensions[row].height = _text_height(line, sum(widths), 10)
            row += 1
    _page_setup(sheet, top)


# --------------------------------------------------------------------------- docx

def write_docx(report: Report, path: Path) -> None:
    """The official form as a Word document (python-docx): A4 landscape, Times New Roman."""
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Cm, Pt

    form = official_form(report)
    document = Document()
    section = document.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = Cm(29.7), Cm(21.0)
    section.top_margin, section.bottom_margin = Cm(2.0), Cm(2.0)
    section.left_margin, section.right_margin = Cm(3.0), Cm(1.5)
    normal = document.styles["Normal"]
    normal.font.name, normal.font.size = FONT, Pt(13)
    _east_asian_font(normal.element, FONT)
    normal.paragraph_format.space_after = Pt(3)
    centre, justify = WD_ALIGN_PARAGRAPH.CENTER, WD_ALIGN_PARAGRAPH.JUSTIFY

    def para(cell_or_doc, text: str = "", *, size: float = 13, bold: bool = False, italic: bool = False,
             underline: bool = False, align=None, indent: bool = False):
        paragraph = cell_or_doc.add_paragraph()
        if align is not None:
            paragraph.alignment = align
        if indent:
            paragraph.paragraph_format.first_line_indent = Cm(1.0)
        run = paragraph.add_run(text)
        run.font.size, run.bold, run.italic, run.underline = Pt(size), bold, italic, underline
        run.font.name = FONT
        return paragraph

    def heading(text: str) -> None:
        paragraph = para(document, text, bold=True)
        paragraph.paragraph_format.keep_with_next = True
        paragraph.paragraph_format.space_before = Pt(8)

    head = document.add_table(rows=1, cols=2)
    head.alignment = WD_TABLE_ALIGNMENT.CENTER
    left, right = head.rows[0].cells
    left.width, right.width = Cm(9.5), Cm(15.5)
    left.paragraphs[0].text = ""
    for n, line in enumerate(form.body):
        target = left.paragraphs[0] if n == 0 else left.add_paragraph()
        target.alignment = centre
        run = target.add_run(line)
        run.font.size, run.bold = Pt(12 if n == 0 else 13), True
    para(left, "―――――", size=10, align=centre)
    para(left, form.number, size=13, align=centre)
    right.paragraphs[0].alignment = centre
    run = right.paragraphs[0].add_run(NATIONAL_NAME)
    run.font.size, run.bold = Pt(12), True
    para(right, MOTTO, size=13, bold=True, underline=True, align=centre)
    para(right, "", size=10)  # level with the line under the issuing body, so the date sits beside Số
    para(right, form.place_date, size=13, italic=True, align=centre)

    para(document, "", size=8)
    para(document, form.title, size=14, bold=True, align=centre)
    para(document, form.subject, size=13, bold=True, align=centre)
    para(document, form.plan_line, size=12, italic=True, align=centre)
    para(document, form.basis, align=justify, indent=True)
    heading("I. KẾT QUẢ THỰC HIỆN")
    for text in form.summary:
        para(document, text, align=justify, indent=True)
    heading("1. Tổng hợp theo kênh")
    _docx_table(document, CHANNEL_HEADINGS, CHANNEL_KINDS, form.channels,
                [6.0, 2.3, 2.3, 2.4, 2.4, 2.3, 2.3, 2.7, 2.0], total_rows=1 + (report.outside_plan is not None))
    heading("2. Kết quả so với chỉ tiêu")
    _docx_table(document, RESULT_HEADINGS, RESULT_KINDS, form.results, [1.2, 6.6, 2.9, 2.9, 2.0, 1.7, 1.7, 2.0,
                                                                         1.8, 2.4])
    if report.by_station is not None:
        view = stations_view(report)
        heading("3. " + view.title)
        _docx_table(document, view.headings, view.kinds, view.rows,
                    [5.2, 2.0, 2.0, 2.6, 1.8, 1.8, 2.2, 2.2, 2.4, 1.4, 1.4], total_rows=view.total_rows)
    heading("II. CÁCH TÍNH SỐ LIỆU")
    for text in form.notes:
        para(document, "- " + text, size=11, italic=True, align=justify)

    sign = document.add_table(rows=1, cols=3)
    for cell, width in zip(sign.rows[0].cells, (8.0, 8.0, 9.0), strict=True):
        cell.width = Cm(width)
    recipients = sign.rows[0].cells[0]
    for n, text in enumerate(form.recipients):
        paragraph = recipients.paragraphs[0] if n == 0 else recipients.add_paragraph()
        run = paragraph.add_run(text)
        run.font.size, run.bold, run.italic = Pt(12 if n == 0 else 11), n == 0, n == 0
    for cell, lines in zip(sign.rows[0].cells[1:], form.signers, strict=True):
        for n, text in enumerate(lines):
            paragraph = cell.paragraphs[0] if n == 0 else cell.add_paragraph()
            paragraph.alignment = centre
            run = paragraph.add_run(text)
            run.font.size, run.bold, run.italic = Pt(13 if n < 2 else 12), n < 2, n == 2
    with atomic_path(Path(path)) as tmp:
        document.save(str(tmp))


def _docx_table(document, headings: list[str], kinds: list[str], rows: list[list[Any]], widths_cm: list[float],
                total_rows: int = 0) -> None:
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Cm, Pt

    table = document.add_table(rows=1 + len(rows), cols=len(headings))
    table.style = "Table Grid"
    table.autofit = False
    for column, width in zip(table.columns, widths_cm, strict=True):
        column.width = Cm(width)  # the grid: LibreOffice lays columns out from it, not from cell widths
    header = table.rows[0]
    repeat = OxmlElement("w:tblHeader")  # the heading row repeats on every page
    repeat.set(qn("w:val"), "true")
    header._tr.get_or_add_trPr().append(repeat)
    for r, values in enumerate([headings, *rows]):
        bold = r == 0 or r > len(rows) - total_rows
        for c, value in enumerate(values):
            cell = table.rows[r].cells[c]
            cell.width = Cm(widths_cm[c])
            paragraph = cell.paragraphs[0]
            paragraph.paragraph_format.space_after = Pt(0)
            kind = kinds[c]
            if r == 0:
                paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
                text = value
            else:
                paragraph.alignment = WD_ALIGN_PARAGRAPH.LEFT if kind == TEXT else WD_ALIGN_PARAGRAPH.RIGHT
                text = cell_text(value, kind, "vi")
            run = paragraph.add_run(text)
            run.font.size, run.bold = Pt(11), bold


def _east_asian_font(style_element, name: str) -> None:
    from docx.oxml.ns import qn

    fonts = style_element.get_or_add_rPr().get_or_add_rFonts()
    for attr in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
        fonts.set(qn(attr), name)
