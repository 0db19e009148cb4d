"""Formatting a ``reports.Report``: table, CSV, JSON, Markdown, XLSX and a PNG chart.

Column headings are Vietnamese by default (``lang="en"`` for English). Every
view is built once as headings + rows of plain values (``views``) and then
rendered; numbers stay numbers until the last step, so CSV, JSON and XLSX
carry raw values while the table and Markdown show them the Vietnamese way
(``1.234,5``).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .fileutil import atomic_path
from .models import Channel, Metric, TargetPeriod
from .plans import METRIC_LABELS, PERIOD_LABELS
from .reports import (
    CHANNEL_LABELS,
    DELIVERY_STATUS_LABELS,
    LATE_AFTER_S,
    STATUS_LABELS,
    WHOLE_PLAN_LABEL,
    Report,
    Totals,
)
from .timeutil import local

FORMATS = ("table", "csv", "json", "md", "xlsx")
PERCENT = "percent"  # a column kind: values are percentages (0..100+)
INTEGER, DECIMAL, TEXT = "int", "dec", "text"

TEXTS = {
    "title": ("Báo cáo kết quả tuyên truyền", "Communication results report"),
    "plan": ("Kế hoạch", "Plan"),
    "period": ("Kỳ báo cáo", "Report period"),
    "timezone": ("giờ", "time zone"),
    "as_of": ("Tính đến", "As of"),
    "elapsed": ("đã qua {pct} thời gian của kỳ", "{pct} of the period has elapsed"),
    "station": ("Đài", "Station"),
    "all_stations": ("tất cả các đài", "all stations"),
    "targets": ("Chỉ tiêu", "Targets"),
    "topics": ("Chủ đề", "Topics"),
    "channels": ("Kênh", "Channels"),
    "not_achieved": ("Không đạt", "Not achieved"),
    "total": ("Tổng cộng", "Total"),
    "illustrative": ("* chỉ tiêu minh họa: văn bản gốc không nêu số",
                     "* illustrative target: the source gives no number"),
    "rules": ("Cách tính: chỉ tính lượt đã phát / tin đã gửi thật; chỉ tiêu quy đổi theo số tháng của kỳ "
              "(tháng ×1, quý ÷3, năm ÷12); 'cần đạt đến nay' = chỉ tiêu kỳ × phần thời gian đã qua; "
              "buổi phát trễ khi bắt đầu sau giờ hẹn từ {late} giây.",
              "Rules: only real broadcasts / sent messages count; targets are scaled by the months in the "
              "period (month ×1, quarter ÷3, year ÷12); 'due by now' = period target × share of the period "
              "elapsed; a slot is late when it started {late} s or more after it was due."),
    "no_targets": ("Kế hoạch chưa có chỉ tiêu", "The plan has no targets"),
    "pace": ("Tiến độ cần đạt", "Due by now"),
    "chart_x": ("% chỉ tiêu của kỳ đã đạt", "% of the period's target achieved"),
}

KIND_LABELS = {
    "not_achieved": ("không đạt", "not achieved"),
    "in_progress": ("đang xử lý", "in progress"),
    "undelivered": ("đã gửi, không đến", "sent, not delivered"),
}


def t(key: str, lang: str) -> str:
    return TEXTS[key][_i(lang)]


def _i(lang: str) -> int:
    return 1 if lang == "en" else 0


# --------------------------------------------------------------------------- views

@dataclass
class View:
    key: str  # targets | topics | channels | not_achieved
    title: str
    headings: list[str]
    kinds: list[str]
    rows: list[list[Any]]


def _topic_label(code: str | None, title: str | None, lang: str) -> str:
    if code is None:
        return WHOLE_PLAN_LABEL[_i(lang)]
    return f"{code} — {title}" if title else code


def _target_text(amount: float, metric: str, period: str, lang: str) -> str:
    return (f"{_num(amount, lang)} {METRIC_LABELS[Metric(metric)][_i(lang)]} "
            f"{PERIOD_LABELS[TargetPeriod(period)][_i(lang)]}")


def views(report: Report, lang: str = "vi") -> list[View]:
    i = _i(lang)
    target_rows = []
    for r in report.targets:
        target_rows.append([
            _topic_label(r.topic_code, r.topic_title, lang) + (" *" if r.illustrative else ""),
            CHANNEL_LABELS[r.channel][i], METRIC_LABELS[Metric(r.metric)][i], r.station_code or "",
            _target_text(r.amount, r.metric, r.period, lang), r.target, r.achieved, r.percent, r.due,
            STATUS_LABELS[r.status][i], r.not_achieved])
    targets = View("targets", t("targets", lang), [
        ("Chủ đề", "Topic"), ("Kênh", "Channel"), ("Chỉ tiêu", "Metric"), ("Đài", "Station"),
        ("Chỉ tiêu theo kế hoạch", "Target as written"), ("Chỉ tiêu của kỳ", "Target for period"),
        ("Đã đạt", "Achieved"), ("Tỷ lệ", "%"), ("Cần đạt đến nay", "Due by now"),
        ("Đánh giá", "Status"), ("Lượt không đạt", "Not achieved")],
        [TEXT, TEXT, TEXT, TEXT, TEXT, DECIMAL, DECIMAL, PERCENT, DECIMAL, TEXT, INTEGER], target_rows)
    topics = View("topics", t("topics", lang), _totals_headings(),
                  _totals_kinds(), [_totals_row(x, _topic_label(x.key, x.title, lang)) for x in report.topics]
                  + [_totals_row(report.total, t("total", lang))])
    topics.headings = [h[i] for h in topics.headings]
    channels = View("channels", t("channels", lang), [h[i] for h in _totals_headings()],
                    _totals_kinds(), [_channel_row(x, CHANNEL_LABELS[x.key][i]) for x in report.channels])
    missing = View("not_achieved", t("not_achieved", lang), [
        ("Chủ đề", "Topic"), ("Kênh", "Channel"), ("Trạng thái", "Status"), ("Loại", "Kind"),
        ("Số lượt", "Count"), ("Phút đã phát", "Minutes aired")],
        [TEXT, TEXT, TEXT, TEXT, INTEGER, DECIMAL],
        [[x.topic_code or WHOLE_PLAN_LABEL[i], CHANNEL_LABELS[x.channel][i], DELIVERY_STATUS_LABELS[x.status][i],
          KIND_LABELS[x.kind][i], x.count, x.airtime_minutes] for x in report.not_achieved])
    for view in (targets, missing):
        view.headings = [h[i] for h in view.headings]
    return [targets, topics, channels, missing]


def _totals_headings() -> list[tuple[str, str]]:
    return [("Chủ đề / kênh", "Topic / channel"), ("Buổi phát", "Slots"), ("Buổi trễ", "Late slots"),
            ("Buổi bị lỡ", "Missed slots"), ("Lượt phát", "Broadcasts"), ("Phút phát sóng", "Airtime minutes"),
            ("SMS đã gửi", "SMS sent"), ("SMS đã đến", "SMS delivered"), ("SMS không đến", "SMS undelivered"),
            ("SMS lỗi", "SMS failed"), ("Người được tiếp cận", "People reached"),
            ("Lượt không đạt", "Not achieved"), ("Đang xử lý", "In progress")]


def _totals_kinds() -> list[str]:
    return [TEXT, INTEGER, INTEGER, INTEGER, INTEGER, DECIMAL, INTEGER, INTEGER, INTEGER, INTEGER, INTEGER,
            INTEGER, INTEGER]


def _channel_row(x: Totals, label: str) -> list[Any]:
    """A channel's row, with the other channel's columns left empty."""
    row = _totals_row(x, label)
    blank = range(6, 10) if x.key == Channel.LOUDSPEAKER else range(1, 6)
    return [None if col in blank else value for col, value in enumerate(row)]


def _totals_row(x: Totals, label: str) -> list[Any]:
    return [label, x.slots, x.late_slots, x.missed_slots, x.broadcasts, x.airtime_minutes, x.sms_sent,
            x.sms_delivered, x.sms_undelivered, x.sms_failed, x.people_reached, x.not_achieved, x.in_progress]


# --------------------------------------------------------------------------- text pieces

def _num(value: float | None, lang: str, digits: int = 1) -> str:
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}" if abs(value - round(value)) > 1e-9 else f"{round(value):,}"
    if lang == "en":
        return text
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def _cell(value: Any, kind: str, lang: str) -> str:
    if value is None:
        return "" if kind in (INTEGER, DECIMAL) else "—"
    if kind == PERCENT:
        return _num(value, lang) + "%"
    if kind in (INTEGER, DECIMAL):
        return _num(value, lang)
    return str(value)


def header_lines(report: Report, lang: str = "vi") -> list[str]:
    as_of = local(report.as_of, report.timezone).strftime("%d/%m/%Y %H:%M")
    station = report.station_code or t("all_stations", lang)
    pct = _num(report.elapsed * 100, lang, 0) + "%"
    return [
        f"{t('title', lang)} — {t('plan', lang)} {report.plan_code}: {report.plan_title}",
        f"{t('period', lang)}: {report.period.label} ({_date(report.period.start)} → {_date(report.period.end)}, "
        f"{t('timezone', lang)} {report.timezone}) · {t('station', lang)}: {station}",
        f"{t('as_of', lang)}: {as_of} — {t('elapsed', lang).format(pct=pct)}",
    ]


def footer_lines(report: Report, lang: str = "vi") -> list[str]:
    lines = [t("rules", lang).format(late=int(LATE_AFTER_S))]
    if any(r.illustrative for r in report.targets):
        lines.insert(0, t("illustrative", lang))
    return lines


def _date(day) -> str:
    return day.strftime("%d/%m/%Y")


# --------------------------------------------------------------------------- renderers

def render_table(report: Report, lang: str = "vi", width: int = 160) -> str:
    """The report for a terminal ``width`` columns wide (see ``broadcaster.tables`` for narrow screens)."""
    import textwrap

    from .tables import render_table as fitted_table

    def wrapped(lines: list[str]) -> list[str]:
        return ["\n".join(textwrap.wrap(line, width, subsequent_indent="  ")) + "\n" for line in lines]

    parts = wrapped(header_lines(report, lang))
    for view in views(report, lang):
        if not view.rows:
            parts.append(f"{view.title}: (không có / none)\n")
            continue
        parts.append(fitted_table(
            view.headings, ([_cell(v, k, lang) for v, k in zip(row, view.kinds, strict=True)] for row in view.rows),
            width=width, title=view.title, justify=["left" if kind == TEXT else "right" for kind in view.kinds]))
    parts += wrapped(footer_lines(report, lang))
    return "".join(parts)


def render_csv(report: Report, lang: str = "vi") -> str:
    """All four views, each under a title row and separated by an empty row (opens cleanly in a spreadsheet)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for line in header_lines(report, lang):
        writer.writerow([line])
    for view in views(report, lang):
        writer.writerow([])
        writer.writerow([view.title])
        writer.writerow(view.headings)
        for row in view.rows:
            writer.writerow(["" if v is None else (round(v, 4) if isinstance(v, float) else v) for v in row])
    writer.writerow([])
    for line in footer_lines(report, lang):
        writer.writerow([line])
    return out.getvalue()


def render_json(report: Report) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        return str(value)

    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2, default=default) + "\n"


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
        for row in view.rows:
            lines.append("| " + " | ".join(_md(_cell(v, k, lang)) for v, k in zip(row, view.kinds, strict=True))
                         + " |")
        lines.append("")
    lines += [f"_{x}_  " for x in footer_lines(report, lang)]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(report: Report, fmt: str, lang: str = "vi") -> str:
    if fmt == "csv":
        return render_csv(report, lang)
    if fmt == "json":
        return render_json(report)
    if fmt == "md":
        return render_markdown(report, lang)
    return render_table(report, lang)


# --------------------------------------------------------------------------- xlsx

def write_xlsx(report: Report, path: Path, lang: str = "vi") -> None:
    """One sheet per view: a title line, the report header, then bold headings and the rows."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    header = header_lines(report, lang)
    for view in views(report, lang):
        sheet = book.create_sheet(view.title[:31])
        sheet.append([header[0]])
        sheet["A1"].font = Font(bold=True, size=12)
        for line in header[1:]:
            sheet.append([line])
        sheet.append([])
        heading_row = len(header) + 2
        sheet.append(view.headings)
        for cell in sheet[heading_row]:
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor="DDEBF7")
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        for row in view.rows:
            sheet.append([(v / 100 if k == PERCENT and v is not None else v)
                          for v, k in zip(row, view.kinds, strict=True)])
        for col, kind in enumerate(view.kinds, 1):
            for (cell,) in sheet.iter_rows(min_row=heading_row + 1, min_col=col, max_col=col):
                if kind == PERCENT:
                    cell.number_format = "0%"
                elif kind == DECIMAL:
                    cell.number_format = "#,##0.0"
                elif kind == INTEGER:
                    cell.number_format = "#,##0"
            values = [view.headings[col - 1], *(_cell(r[col - 1], kind, "en") for r in view.rows)]
            width = max(len(str(v)) for v in values)
            sheet.column_dimensions[get_column_letter(col)].width = min(60, max(10, width + 2))
        sheet.freeze_panes = sheet.cell(row=heading_row + 1, column=1)
        if view.key == "targets":
            for line in footer_lines(report, lang):
                sheet.append([])
                sheet.append([line])
    with atomic_path(Path(path)) as tmp:
        book.save(tmp)


# --------------------------------------------------------------------------- chart

STATUS_COLOURS = {"done": "#2e7d32", "on_track": "#1565c0", "behind": "#e65100"}


def write_chart(report: Report, path: Path, lang: str = "vi") -> None:
    """Horizontal bars of % achieved per target, grouped by topic, with the pace line and the 100% line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    i = _i(lang)
    order = {code: n for n, code in enumerate(x.key for x in report.topics)}
    rows = sorted((r for r in report.targets if r.percent is not None),
                  key=lambda r: order.get(r.topic_code, len(order)))
    labels = []
    for r in rows:
        topic = r.topic_code or WHOLE_PLAN_LABEL[i]
        station = f" · {r.station_code}" if r.station_code else ""
        labels.append(f"{topic} · {METRIC_LABELS[Metric(r.metric)][i]}{station}")
    bar_space = 0.42 * max(1, len(rows))
    height = 1.9 + bar_space  # title and axis + legend + bars, in inches
    plt.rcParams["font.family"] = "DejaVu Sans"
    fig, ax = plt.subplots(figsize=(10, height), dpi=110)
    pace = report.elapsed * 100
    cap = 200.0
    top = max(110.0, pace + 10, *(min(r.percent, cap) + 40 for r in rows)) if rows else 110.0
    if rows:
        positions = list(range(len(rows)))[::-1]
        shade, previous = False, object()
        for pos, r in zip(positions, rows, strict=True):  # a light band behind each topic's bars
            if r.topic_code != previous:
                shade, previous = not shade, r.topic_code
            if shade:
                ax.axhspan(pos - 0.5, pos + 0.5, color="#f2f2f2", zorder=0)
        values = [min(r.percent, cap) for r in rows]
        stubs = [max(v, top * 0.006) for v in values]  # a 0% bar still shows its colour
        ax.barh(positions, stubs, color=[STATUS_COLOURS[r.status] for r in rows], height=0.62, zorder=2)
        ax.set_yticks(positions, labels)
        for pos, r, value in zip(positions, rows, values, strict=True):
            more = "▸ " if r.percent > cap else ""
            text = f"{more}{_num(r.percent, lang, 0)}%  ({_num(r.achieved, lang)}/{_num(r.target, lang)})"
            ax.text(value + top * 0.012, pos, text, va="center", fontsize=9, zorder=5,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1.0})
        ax.set_ylim(-0.5, len(rows) - 0.5)
    else:
        ax.set_yticks([])
        ax.text(0.5, 0.5, t("no_targets", lang), transform=ax.transAxes, ha="center", va="center", fontsize=12)
    ax.axvline(100, color="#222222", linewidth=1.3, zorder=4)
    ax.axvline(pace, color="#c62828", linewidth=1.6, linestyle="--", zorder=4)
    ax.set_xlim(0, top)
    ax.set_xlabel(t("chart_x", lang))
    ax.grid(axis="x", color="#dddddd", linewidth=0.6, zorder=1)
    ax.set_axisbelow(True)
    station = f" · {t('station', lang).lower()} {report.station_code}" if report.station_code else ""
    ax.set_title(f"{report.plan_code} — {t('period', lang).lower()} {report.period.label} "
                 f"({_date(report.period.start)}–{_date(report.period.end)}){station}",
                 fontsize=12, loc="left", pad=26)
    as_of = local(report.as_of, report.timezone).strftime("%d/%m/%Y")
    legend = [Patch(color=STATUS_COLOURS[k], label=STATUS_LABELS[k][i]) for k in ("done", "on_track", "behind")]
    legend.append(Line2D([0], [0], color="#c62828", linestyle="--",
                         label=f"{t('pace', lang)} ({as_of}): {_num(pace, lang, 0)}%"))
    legend.append(Line2D([0], [0], color="#222222", label="100%"))
    ax.legend(handles=legend, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=5, fontsize=9, frameon=False,
              borderaxespad=0.2, handlelength=1.6, columnspacing=1.2)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
