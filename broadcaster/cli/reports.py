"""``log`` and ``report``: the delivery log, and results measured against a plan's targets."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import click

from .. import reports
from ..fileutil import write_text_atomic
from ..models import Channel
from ..phones import mask_phone
from ..reports import chart as charts
from ..reports import document, formats
from ..timeutil import local, parse_local_datetime
from .common import echo_json, echo_table, fmt_dt, get_app, terminal_width

LOG_FIELDS = ["id", "created_at", "updated_at", "channel", "status", "plan", "topic", "item_id", "item_title",
              "station", "recipient", "bulletin_id", "campaign_id", "started_at", "duration_s", "late_s",
              "attempts", "error", "approved_by", "approved_at", "announced_by", "announced_at", "created_at_utc"]


@click.command("log")
@click.option("--since", help="Từ ngày/giờ (giờ địa phương) / from date or date-time, local: 01/05/2023, "
                              "'01/05/2023 06:00' hoặc/or 2023-05-01.")
@click.option("--until", help="Đến hết ngày / until the end of this date, or until this date-time (local).")
@click.option("--channel", type=click.Choice([Channel.LOUDSPEAKER.value, Channel.SMS.value]),
              help="Kênh / channel.")
@click.option("--status", "statuses", multiple=True, type=click.Choice(reports.KNOWN_STATUSES),
              help="Trạng thái (lặp lại được) / status (repeatable).")
@click.option("--topic", help="Mã chủ đề (MÃ_KH:MÃ nếu trùng) / topic code (PLAN:CODE when ambiguous).")
@click.option("--station", help="Mã đài / station code.")
@click.option("--plan", "plan_code", help="Mã kế hoạch / plan code.")
@click.option("--item", "item_id", type=int, help="Số tin bài / content item id.")
@click.option("--limit", type=click.IntRange(min=0), default=200, show_default=True,
              help="Số dòng tối đa, 0 = tất cả / most rows, 0 = all.")
@click.option("--csv", "as_csv", is_flag=True, help="In ra CSV / print CSV.")
@click.option("--json", "as_json", is_flag=True, help="In ra JSON / print JSON.")
@click.option("--show-numbers", is_flag=True, help="Hiện đủ số điện thoại / show full phone numbers.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Với --csv/--json: ghi ra tệp (CSV mở được bằng Excel) / with --csv/--json: write to a file "
                   "(a CSV that Excel opens with Vietnamese intact).")
def log_command(since: str | None, until: str | None, channel: str | None, statuses: tuple[str, ...],
                topic: str | None, station: str | None, plan_code: str | None, item_id: int | None, limit: int,
                as_csv: bool, as_json: bool, show_numbers: bool, output: Path | None) -> None:
    """Nhật ký phát và gửi tin, mới nhất trước / the delivery log, newest first."""
    if as_csv and as_json:
        raise click.UsageError("chọn --csv hoặc --json / choose --csv or --json")
    if output is not None and not (as_csv or as_json):
        raise click.UsageError("-o cần --csv hoặc --json / -o needs --csv or --json")
    app = get_app()
    tz_name = app.config.broadcaster.timezone
    with app.read_session() as session:
        rows = reports.query_log(session, tz_name=tz_name, since=since, until=until, channel=channel,
                                 statuses=statuses, topic=topic, station=station, plan=plan_code,
                                 item_id=item_id, limit=limit or None)
    data = []
    for row in rows:
        item = dict(row.__dict__)
        if item["recipient"] and not show_numbers:
            item["recipient"] = mask_phone(item["recipient"])
        if as_csv or as_json:  # people read station time with its offset; UTC stays as one extra column
            item["created_at_utc"] = item["created_at"].isoformat(timespec="seconds")
            item.update({key: local(value, tz_name).isoformat(timespec="seconds") for key, value in item.items()
                         if isinstance(value, datetime) and key != "created_at_utc"})
        data.append(item)
    if as_json and output is not None:
        write_text_atomic(output, json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
        click.echo(f"Đã ghi / written: {output} ({len(data)} dòng/rows)")
        return
    if as_json:
        echo_json(data)
        return
    if as_csv:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=LOG_FIELDS, lineterminator="\n")
        writer.writeheader()
        for item in data:
            writer.writerow({k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in item.items()})
        if output is not None:  # a BOM lets spreadsheet programs on Windows read the CSV as UTF-8
            write_text_atomic(output, "\ufeff" + out.getvalue())
            click.echo(f"Đã ghi / written: {output} ({len(data)} dòng/rows)")
            return
        click.echo(out.getvalue(), nl=False)
        return
    echo_table(
        ["Số/id", "Thời điểm/time", "Kênh/channel", "Trạng thái/status", "Đài/station", "Chủ đề/topic",
         "Tin/item", "Người nhận/recipient", "Giây/seconds", "Lỗi/error"],
        ([d["id"], fmt_dt(d["created_at"], tz_name), d["channel"],
          reports.DELIVERY_STATUS_LABELS.get(d["status"], (d["status"],))[0], d["station"] or "", d["topic"] or "",
          f"{d['item_id']}: {d['item_title']}" if d["item_id"] else "", d["recipient"] or "",
          f"{d['duration_s']:.0f}" if d["duration_s"] is not None else "", d["error"] or ""] for d in data),
        title=f"Nhật ký / delivery log ({len(data)} dòng/rows, giờ/time zone {tz_name})",
        optional=[8, 2, 5, 4], clip=[6],
    )


@click.command("report")
@click.option("--plan", "plan_code", required=True, help="Mã kế hoạch / plan code, e.g. 911/KH-UBND.")
@click.option("--period", help="Kỳ báo cáo / period: 2023, 2023-Q2, 2023-05 (mặc định cả kế hoạch / "
                               "default the whole plan).")
@click.option("--station", help="Chỉ một đài / one station only.")
@click.option("--format", "fmt", type=click.Choice(formats.FORMATS), default="table", show_default=True,
              help="Định dạng / output format (xlsx, docx: văn bản theo thể thức / the official form).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Ghi ra tệp / write to a file (bắt buộc với/required for xlsx, docx). CSV: report.csv → "
                   "report-targets.csv, report-topics.csv, report-channels.csv, report-log.csv.")
@click.option("--table", "table", type=click.Choice(formats.TABLES),
              help="CSV: chỉ một bảng / only this table.")
@click.option("--chart", type=click.Path(dir_okay=False, path_type=Path),
              help="Vẽ biểu đồ tiến độ ra tệp PNG / draw a progress chart to a PNG file.")
@click.option("--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True,
              help="Ngôn ngữ tiêu đề cột / language of the headings.")
@click.option("--as-of", "as_of", help="Tính đến thời điểm (giờ địa phương) / as of this local date-time "
                                       "(mặc định bây giờ / default now).")
def report_command(plan_code: str, period: str | None, station: str | None, fmt: str, output: Path | None,
                   table: str | None, chart: Path | None, lang: str, as_of: str | None) -> None:
    """Báo cáo kết quả so với chỉ tiêu của kế hoạch / results against the plan's targets."""
    if fmt in ("xlsx", "docx") and output is None:
        raise click.UsageError(f"định dạng {fmt} cần -o TỆP.{fmt} / {fmt} needs -o FILE.{fmt}")
    if table is not None and fmt != "csv":
        raise click.UsageError("--table chỉ dùng với --format csv / --table is for --format csv")
    if fmt == "csv" and output is None and table is None:
        raise click.UsageError("CSV: mỗi tệp một bảng, thêm -o TỆP.csv hoặc --table "
                               f"{'|'.join(formats.TABLES)} / CSV is one table per file: give -o FILE.csv "
                               "or --table NAME")
    if chart is not None and chart.suffix.lower() != ".png":
        raise click.UsageError("biểu đồ phải là tệp .png / --chart must name a .png file")
    app = get_app()
    tz_name = app.config.broadcaster.timezone
    moment = None
    if as_of:
        text = as_of.strip()
        moment = parse_local_datetime(text + " 23:59:59" if len(text) <= 10 else text, tz_name)
    tables = (table,) if table else formats.TABLES
    with_log = fmt == "xlsx" or (fmt == "csv" and "log" in tables)
    with app.read_session() as session:
        report = reports.build_report(session, plan_code, period, station, moment, tz_name=tz_name,
                                      commune=app.config.broadcaster.commune, with_log=with_log)
    written: list[Path] = []
    if fmt == "xlsx":
        document.write_xlsx(report, output, lang)
        written.append(output)
    elif fmt == "docx":
        document.write_docx(report, output)
        written.append(output)
    elif fmt == "csv" and output is not None:
        written += formats.write_csv(report, output, tables, lang)
    elif fmt == "csv":
        view = next(v for v in formats.views(report, lang) if v.key == table)
        click.echo(formats.render_csv_table(view), nl=False)
    else:
        text = formats.render_table(report, lang, width=terminal_width()) if fmt == "table" and \
            output is None else formats.render(report, fmt, lang)
        if output is None:
            click.echo(text, nl=False)
        else:
            write_text_atomic(output, text)
            written.append(output)
    if chart is not None:
        charts.write_chart(report, chart, lang)
        written.append(chart)
    for path in written:  # on stderr when the report itself went to stdout
        click.echo(f"Đã ghi / written: {path}", err=output is None)


COMMANDS = [log_command, report_command]
