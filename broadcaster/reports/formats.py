"""Laying a ``Report`` out as text: the terminal table, CSV, JSON and Markdown.

Column headings are Vietnamese by default (``lang="en"`` for English). Every
table is built once as headings + rows of plain values (``views``) and then
rendered; numbers stay numbers until the last step, so CSV, JSON and XLSX
carry raw values (CSV: a decimal point, no thousands separator) while the
text table and Markdown show them the Vietnamese way (``2.000``, ``4,5``).
The official form (the XLSX "Báo cáo" sheet and the DOCX) is in
``document``, the progress chart in ``chart``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..fileutil import write_text_atomic
from ..models import Metric, TargetPeriod
from ..phones import mask_phone
from ..plans import PERIOD_LABELS
from ..timeutil import local
from .build import Report, Totals
from .terms import (
    CHANNEL_LABELS,
    CHANNEL_ROW_LABELS,
    DELIVERY_STATUS_LABELS,
    LATE_AFTER_S,
    METRIC_LABELS,
    OUTSIDE_PLAN,
    SMS_ROW,
    STATUS_LABELS,
    WHOLE_PLAN_LABEL,
)

FORMATS = ("table", "csv", "json", "md", "xlsx", "docx")
TEXT, INTEGER, MINUTES, DECIMAL, PERCENT, DATETIME = "text", "int", "minutes", "dec", "percent", "datetime"
TABLES = ("targets", "topics", "channels", "log")

TEXTS = {
    "title": ("Báo cáo kết quả thông tin, tuyên truyền", "Communication results report"),
    "commune": ("Xã", "Commune"),
    "plan": ("Kế hoạch", "Plan"),
    "period": ("Kỳ báo cáo", "Report period"),
    "timezone": ("giờ", "time zone"),
    "as_of": ("Tính đến", "As of"),
    "elapsed": ("đã qua {pct} thời gian của kỳ", "{pct} of the period has elapsed"),
    "station": ("Đài", "Station"),
    "stations": ("Đài", "Stations"),
    "no_station": ("chưa có đài", "no station"),
    "targets": ("Kết quả so với chỉ tiêu", "Results against targets"),
    "topics": ("Kết quả theo chủ đề", "Results by topic"),
    "channels": ("Kết quả theo kênh", "Results by channel"),
    "log": ("Nhật ký phát và gửi tin trong kỳ", "Delivery log of the period"),
    "total": ("Tổng cộng", "Total"),
    "illustrative": ("* Chỉ tiêu minh họa: văn bản kế hoạch gốc không nêu số, không phải chỉ tiêu được giao.",
                     "* Illustrative target: the source plan gives no number; not an assigned target."),
    "no_targets": ("Kế hoạch chưa có chỉ tiêu", "The plan has no targets"),
    "pace": ("Tiến độ cần đạt", "Due by now"),
    "chart_x": ("% đã đạt so với mức cần đạt", "% of the target achieved"),
    "counted_from": ("đếm từ {start}", "counted from {start}"),
}

# The report rules, printed under every report and in docs/reports.md (keep the two the same).
RULES = [
    ("Buổi phát: bản tin loa có ít nhất một tin của kế hoạch đã phát trọn, hoặc đợt gửi SMS có ít nhất một tin "
     "nhắn của kế hoạch đã gửi. Bản tin theo lịch, thông báo và SMS ở các dòng riêng của bảng theo kênh; bản "
     "tin không có tin nào của kế hoạch ở dòng \"ngoài kế hoạch\", không tính vào tổng. Buổi trễ: bắt đầu "
     "sau giờ hẹn từ {late} giây.",
     "Sessions: loudspeaker bulletins with at least one plan item played in full, or SMS sends with at least "
     "one plan message sent. Scheduled bulletins, announcements and SMS are separate rows of the channel "
     "table; a bulletin with no plan item is on the \"outside the plan\" row and in no total. A late session "
     "started {late} s or more after it was due."),
    ("Lượt phát: số tin của kế hoạch đã phát trọn trong một buổi (đọc mấy lần cũng là một lượt). Phút nội dung: "
     "thời lượng đọc các tin đó, là con số tính chỉ tiêu thời lượng. Phút lên sóng: toàn bộ thời gian các buổi "
     "phát trên loa (gồm nhạc hiệu, lời giới thiệu, khoảng nghỉ).",
     "Broadcasts: plan items played in full in one session (several readings are one broadcast). Content "
     "minutes: the speech of those items, which airtime targets count. On-air minutes: the whole time the "
     "sessions were on the loudspeakers (jingles, ident and pauses included)."),
    ("SMS đã gửi: đã rời máy (đã gửi, đã đến hoặc không đến); đã đến: nhà mạng báo đã đến máy người nhận.",
     "SMS sent: left the machine (sent, delivered or undelivered); delivered: the operator reported delivery."),
    ("Các cột trạng thái đếm theo lượt (tin loa hoặc tin nhắn): chưa xong (đang chờ, đang gửi, đang phát), đã "
     "hủy, lỗi, bị lỡ, bị ngắt, không rõ kết quả, bỏ qua. Chỉ cột \"Lỗi\" là lỗi.",
     "Status columns count deliveries (items aired or messages): pending or in progress, cancelled, failed, "
     "missed, interrupted, uncertain, skipped. Only \"Failed\" counts failures."),
    ("Người được tiếp cận: số người khác nhau, gồm người nhận SMS đã gửi/đã đến và số người nghe ước tính của "
     "mỗi đài đã phát (hai nhóm có thể trùng nhau). Dòng tổng đếm mỗi người một lần nên các dòng có thể cộng "
     "lại nhiều hơn. Chỉ tiêu người được tiếp cận không chia theo tháng: so với số người đã tiếp cận từ đầu "
     "kỳ của chính chỉ tiêu (tháng, quý, năm hoặc từ đầu kế hoạch) đến cuối kỳ báo cáo.",
     "People reached: distinct people, the recipients of sent/delivered SMS plus the estimated listeners of "
     "each station that aired (the two may overlap). A total counts each person once, so rows can add up to "
     "more. A people target is never split by months: it is compared with the people reached from the start "
     "of the target's own period (month, quarter, year, or the plan's start) to the end of the report period."),
    ("Chỉ tiêu khác quy đổi theo số tháng của kỳ (tháng ×1, quý ÷3, năm ÷12, cả kế hoạch theo tỷ lệ số tháng); "
     "\"cần đạt đến nay\" = mức cần đạt × phần thời gian đã qua. Đánh giá: đạt khi đã đạt ≥ mức cần đạt; "
     "đúng tiến độ khi ≥ mức cần đạt đến nay; còn lại là chậm.",
     "Other targets are scaled by the months of the period (month ×1, quarter ÷3, year ÷12, whole plan by its "
     "share of months); \"due by now\" = target × share of time elapsed. Status: done when achieved ≥ target; "
     "on track when ≥ due by now; otherwise behind."),
    ("Bảng theo chủ đề và bảng theo kênh đếm cùng các lượt và buổi nên có cùng dòng tổng; một buổi mang hai "
     "chủ đề là một buổi của mỗi chủ đề và một buổi trong tổng. Thời điểm tính là lúc ghi nhật ký, theo giờ "
     "{tz}.",
     "The topic table and the channel table count the same deliveries and sessions, so their totals are "
     "equal; a session carrying two topics is a session of each and one session in the total. Deliveries "
     "count at the time they were logged, in {tz} time."),
]

TOTALS_COLUMNS = [
    ("sessions", ("Buổi phát", "Sessions"), INTEGER),
    ("late_sessions", ("Buổi trễ", "Late sessions"), INTEGER),
    ("broadcasts", ("Lượt phát", "Broadcasts"), INTEGER),
    ("content_minutes", ("Phút nội dung", "Content minutes"), MINUTES),
    ("on_air_minutes", ("Phút lên sóng", "On-air minutes"), MINUTES),
    ("sms_sent", ("SMS đã gửi", "SMS sent"), INTEGER),
    ("sms_delivered", ("SMS đã đến", "SMS delivered"), INTEGER),
    ("sms_undelivered", ("SMS không đến", "SMS undelivered"), INTEGER),
    ("people_reached", ("Người được tiếp cận", "People reached"), INTEGER),
    ("in_progress", ("Chưa xong", "Pending"), INTEGER),
    ("cancelled", ("Đã hủy", "Cancelled"), INTEGER),
    ("failed", ("Lỗi", "Failed"), INTEGER),
    ("missed", ("Bị lỡ", "Missed"), INTEGER),
    ("interrupted", ("Bị ngắt", "Interrupted"), INTEGER),
    ("uncertain", ("Không rõ kết quả", "Uncertain"), INTEGER),
    ("skipped", ("Bỏ qua", "Skipped"), INTEGER),
]
LOUDSPEAKER_ONLY = {"late_sessions", "broadcasts", "content_minutes", "on_air_minutes", "interrupted"}
SMS_ONLY = {"sms_sent", "sms_delivered", "sms_undelivered", "uncertain"}
OUTSIDE_PLAN_SHOWN = {"sessions", "late_sessions", "on_air_minutes"}


def t(key: str, lang: str) -> str:
    return TEXTS[key][lang_index(lang)]


def lang_index(lang: str) -> int:
    """0 for Vietnamese, 1 for English: the index into every (vi, en) label pair."""
    return 1 if lang == "en" else 0


# --------------------------------------------------------------------------- views

@dataclass
class View:
    key: str  # one of TABLES
    title: str
    headings: list[str]
    kinds: list[str]
    rows: list[list[Any]]
    total_rows: int = 0  # how many of the last rows are totals (drawn bold / below a line)


def short_title(text: str, limit: int = 28) -> str:
    """``text`` cut at a word boundary to ``limit`` characters, with an ellipsis when cut."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:–-— ")
    return (cut or text[: limit - 1]) + "…"


def topic_label(code: str | None, title: str | None, lang: str, short: int | None = None) -> str:
    if code is None:
        return WHOLE_PLAN_LABEL[lang_index(lang)]
    if not title:
        return code
    return f"{code} · {short_title(title, short)}" if short else f"{code} — {title}"


def target_text(r, lang: str) -> str:
    """The target as the plan writes it, e.g. "8 lượt phát mỗi tháng"."""
    text = (f"{number_text(r.amount, lang)} {METRIC_LABELS[r.metric][lang_index(lang)]} "
            f"{PERIOD_LABELS[TargetPeriod(r.period)][lang_index(lang)]}")
    if r.metric == Metric.PEOPLE_REACHED:
        text += " (" + t("counted_from", lang).format(start=date_text(r.counted_from)) + ")"
    return text


def views(report: Report, lang: str = "vi", *, short: int | None = None) -> list[View]:
    """The report's tables; ``short`` cuts topic titles to that many characters (the text table)."""
    i = lang_index(lang)
    target_rows = []
    for r in report.targets:
        target_rows.append([
            topic_label(r.topic_code, r.topic_title, lang, short) + (" *" if r.illustrative else ""),
            CHANNEL_LABELS[r.channel][i], METRIC_LABELS[r.metric][i], r.station_code or "", target_text(r, lang),
            r.target, r.achieved, r.percent, r.due, r.shortfall, STATUS_LABELS[r.status][i]])
    targets = View("targets", t("targets", lang), [h[i] for h in [
        ("Chủ đề", "Topic"), ("Kênh", "Channel"), ("Số đo", "Measure"), ("Đài", "Station"),
        ("Theo kế hoạch", "As the plan says"), ("Cần đạt trong kỳ", "Target for the period"),
        ("Đã đạt", "Achieved"), ("Tỷ lệ", "%"), ("Cần đạt đến nay", "Due by now"), ("Còn thiếu", "Short by"),
        ("Đánh giá", "Status")]],
        [TEXT, TEXT, TEXT, TEXT, TEXT, DECIMAL, DECIMAL, PERCENT, DECIMAL, DECIMAL, TEXT], target_rows)
    heading = [("Chủ đề", "Topic")[i]] + [h[i] for _, h, _ in TOTALS_COLUMNS]
    kinds = [TEXT] + [k for _, _, k in TOTALS_COLUMNS]
    topics = View("topics", t("topics", lang), heading, kinds,
                  [totals_row(x, topic_label(x.key, x.title, lang, short)) for x in report.topics]
                  + [totals_row(report.total, t("total", lang))], total_rows=1)
    channel_rows = [channel_row(x, CHANNEL_ROW_LABELS[x.key][i]) for x in report.channels]
    channel_rows.append(totals_row(report.total, t("total", lang)))
    if report.outside_plan is not None:
        channel_rows.append(channel_row(report.outside_plan, CHANNEL_ROW_LABELS[OUTSIDE_PLAN][i]))
    channels = View("channels", t("channels", lang), [("Kênh", "Channel")[i]] + heading[1:], kinds, channel_rows,
                    total_rows=1 + (report.outside_plan is not None))
    result = [targets, topics, channels]
    if report.log is not None:
        result.append(log_view(report, lang))
    return result


def log_view(report: Report, lang: str = "vi") -> View:
    """The period's deliveries, oldest first, phone numbers masked."""
    i = lang_index(lang)
    rows = [[r.id, local(r.created_at, report.timezone).replace(tzinfo=None), CHANNEL_LABELS[r.channel][i],
             DELIVERY_STATUS_LABELS.get(r.status, (r.status, r.status))[i], r.station or "", r.topic or "",
             r.item_title or "", mask_phone(r.recipient) if r.recipient else "", r.duration_s, r.error or "",
             r.signed_off(report.timezone, lang)]
            for r in report.log or []]
    return View("log", t("log", lang), [h[i] for h in [
        ("Số", "Id"), ("Thời điểm", "Time"), ("Kênh", "Channel"), ("Trạng thái", "Status"), ("Đài", "Station"),
        ("Chủ đề", "Topic"), ("Tin", "Item"), ("Người nhận", "Recipient"), ("Giây", "Seconds"),
        ("Lỗi", "Error"), ("Người duyệt", "Signed off by")]],
        [INTEGER, DATETIME, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, MINUTES, TEXT, TEXT], rows)


def totals_row(x: Totals, label: str) -> list[Any]:
    return [label] + [getattr(x, name) for name, _, _ in TOTALS_COLUMNS]


def channel_row(x: Totals, label: str) -> list[Any]:
    """A channel's row, with the columns that do not apply to it left empty."""
    if x.key == OUTSIDE_PLAN:
        blank = {name for name, _, _ in TOTALS_COLUMNS} - OUTSIDE_PLAN_SHOWN
    else:
        blank = LOUDSPEAKER_ONLY if x.key == SMS_ROW else SMS_ONLY
    return [label] + [None if name in blank else getattr(x, name) for name, _, _ in TOTALS_COLUMNS]


# --------------------------------------------------------------------------- text pieces

def number_text(value: float | None, lang: str, digits: int = 1, *, fixed: bool = False) -> str:
    """Vietnamese number style (``2.000``, ``4,5``); English keeps ``2,000`` and ``4.5``."""
    if value is None:
        return "—"
    if fixed or abs(value - round(value)) > 1e-9:
        text = f"{value:,.{digits}f}"
    else:
        text = f"{round(value):,}"
    if lang == "en":
        return text
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def cell_text(value: Any, kind: str, lang: str) -> str:
    if value is None:
        return ""
    if kind == PERCENT:
        return number_text(value, lang) + "%"
    if kind == MINUTES:
        return number_text(value, lang, fixed=True)
    if kind in (INTEGER, DECIMAL):
        return number_text(value, lang)
    if kind == DATETIME:
        return value.strftime("%d/%m/%Y %H:%M")
    return str(value)


def date_text(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def commune_heading(report: Report, lang: str) -> str:
    """"Xã Phước Hà · " when the commune is known (the config's, else the stations'), else nothing."""
    return f"{t('commune', lang)} {report.commune} · " if report.commune else ""


def station_names(report: Report, lang: str = "vi") -> str:
    if not report.stations:
        return t("no_station", lang)
    return ", ".join(f"{s.name} ({s.code})" if s.name and s.name != s.code else s.code for s in report.stations)


def header_lines(report: Report, lang: str = "vi") -> list[str]:
    as_of = local(report.as_of, report.timezone).strftime("%d/%m/%Y %H:%M")
    pct = number_text(report.elapsed * 100, lang, 0) + "%"
    return [
        f"{t('title', lang)} — {commune_heading(report, lang)}{t('stations', lang)}: {station_names(report, lang)}",
        f"{t('plan', lang)} {report.plan_code}: {report.plan_title}",
        f"{t('period', lang)}: {report.period.label} ({date_text(report.period.start)} → {date_text(report.period.end)}, "
        f"{t('timezone', lang)} {report.timezone})",
        f"{t('as_of', lang)}: {as_of} — {t('elapsed', lang).format(pct=pct)}",
    ]


def rule_lines(report: Report, lang: str = "vi") -> list[str]:
    lines = [text[lang_index(lang)].format(late=int(LATE_AFTER_S), tz=report.timezone) for text in RULES]
    if report.illustrative:
        lines.insert(0, t("illustrative", lang))
    return lines


# --------------------------------------------------------------------------- renderers

def render_table(report: Report, lang: str = "vi", width: int | None = None) -> str:
    """Rich tables at the terminal's width (80 when not a terminal); wide tables are split by columns,
    each part repeating the first column."""
    from rich.console import Console
    from rich.table import Table

    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, color_system=None)
    if width is None:  # measure the real terminal, not the StringIO
        console.width = Console().width
    for line in header_lines(report, lang):
        console.print(line, highlight=False, markup=False)
    for view in views(report, lang, short=22):
        console.print()
        if not view.rows:
            console.print(f"{view.title}: (không có / none)", markup=False)
            continue
        cells = [[cell_text(v, k, lang) for v, k in zip(row, view.kinds, strict=True)] for row in view.rows]
        label = _label_width(view, cells)
        for part, columns in enumerate(_column_groups(view, cells, console.width)):
            title = view.title if part == 0 else f"{view.title} (tiếp / continued)"
            table = Table(title=title, title_justify="left", show_lines=False)
            for col in columns:
                table.add_column(view.headings[col], justify="left" if view.kinds[col] == TEXT else "right",
                                 overflow="fold", width=_need(view, cells, col) - 3 if col else label)
            for n, row in enumerate(cells):
                table.add_row(*(row[c] for c in columns), end_section=n == len(cells) - view.total_rows - 1)
            console.print(table)
    console.print()
    for line in rule_lines(report, lang):
        console.print(line, highlight=False, markup=False)
    return out.getvalue()


def _need(view: View, cells: list[list[str]], col: int) -> int:
    """Characters a column wants: its longest heading word or cell (text cut at 30), plus padding."""
    words = max((len(w) for w in view.headings[col].split()), default=1)
    longest = max((len(row[col]) for row in cells), default=0)
    return max(words, min(longest, 30 if view.kinds[col] == TEXT else 99)) + 3


def _label_width(view: View, cells: list[list[str]]) -> int:
    return min(_need(view, cells, 0), 26) - 3


def _column_groups(view: View, cells: list[list[str]], width: int) -> list[list[int]]:
    """Columns packed greedily into parts that fit ``width``; column 0 (the label) starts every part."""
    def need(col: int) -> int:
        return _need(view, cells, col)

    label = _label_width(view, cells) + 3
    groups, current, used = [], [0], label + 1
    for col in range(1, len(view.headings)):
        if len(current) > 1 and used + need(col) > width:
            groups.append(current)
            current, used = [0], label + 1
        current.append(col)
        used += need(col)
    groups.append(current)
    return groups


def render_csv_table(view: View) -> str:
    """One table: a heading row and plain values (decimal point, no thousands separator)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(view.headings)
    for row in view.rows:
        writer.writerow([_csv_value(v, k) for v, k in zip(row, view.kinds, strict=True)])
    return out.getvalue()


def _csv_value(value: Any, kind: str) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        text = f"{value:.3f}".rstrip("0").rstrip(".")
        return text if text not in ("-0", "") else "0"
    return value


def csv_paths(output: Path, tables: tuple[str, ...]) -> dict[str, Path]:
    """``report.csv`` → ``report-targets.csv``, ``report-topics.csv``…; one table keeps the name given."""
    output = Path(output)
    if len(tables) == 1:
        return {tables[0]: output}
    return {name: output.with_name(f"{output.stem}-{name}{output.suffix or '.csv'}") for name in tables}


def write_csv(report: Report, output: Path, tables: tuple[str, ...], lang: str = "vi") -> list[Path]:
    """Each table to its own UTF-8 file with a BOM (so spreadsheet programs on Windows read it as UTF-8)."""
    by_key = {v.key: v for v in views(report, lang)}
    written = []
    for name, path in csv_paths(output, tables).items():
        write_text_atomic(path, "\ufeff" + render_csv_table(by_key[name]))
        written.append(path)
    return written


def render_json(report: Report) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, datetime | date):
            return value.isoformat()
        return str(value)

    data = report.to_dict()
    data["rules_text"] = {"vi": rule_lines(report, "vi"), "en": rule_lines(report, "en")}
    return json.dumps(data, ensure_ascii=False, indent=2, default=default) + "\n"


def render_markdown(report: Report, lang: str = "vi") -> str:
    header = header_lines(report, lang)
    lines = [f"# {header[0]}", "", *(f"{x}  " for x in header[1:]), ""]
    for view in views(report, lang):
        lines += [f"## {view.title}", ""]
        if not view.rows:
            lines += ["(không có / none)", ""]
            continue
        lines.append("| " + " | ".join(_md(h) for h in view.headings) + " |")
        lines.append("|" + "|".join("---" if k == TEXT else "---:" for k in view.kinds) + "|")
        for n, row in enumerate(view.rows):
            text = [_md(cell_text(v, k, lang)) for v, k in zip(row, view.kinds, strict=True)]
            if n >= len(view.rows) - view.total_rows:
                text = [f"**{x}**" if x else x for x in text]
            lines.append("| " + " | ".join(text) + " |")
        lines.append("")
    lines += [f"_{x}_  " for x in rule_lines(report, lang)]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(report: Report, fmt: str, lang: str = "vi") -> str:
    if fmt == "json":
        return render_json(report)
    if fmt == "md":
        return render_markdown(report, lang)
    return render_table(report, lang)
