"""``content``: the items bulletins and SMS are made of."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from .. import content, plans
from ..errors import InputError
from ..models import ItemStatus
from ..timeutil import local, utcnow
from .common import (
    BroadcasterGroup,
    cli_signer,
    echo_changes,
    echo_json,
    echo_table,
    echo_wrapped,
    fmt_dt,
    get_app,
    json_option,
)

STATUS_LABELS = {"draft": "nháp/draft", "approved": "đã duyệt/approved", "retired": "đã ngừng/retired"}


@click.group("content", cls=BroadcasterGroup)
def content_group() -> None:
    """Tin bài / content items."""


def _read_text_file(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError("không tìm thấy tệp / file not found", source=path, field="--text-file") from exc
    except IsADirectoryError as exc:
        raise InputError("đây là thư mục / this is a folder", source=path, field="--text-file") from exc
    except UnicodeDecodeError as exc:
        raise InputError("tệp không phải UTF-8 / file is not UTF-8", source=path, field="--text-file") from exc


@content_group.command("add")
@click.option("--title", required=True, help="Tiêu đề / title.")
@click.option("--topic", required=True, help="Mã chủ đề, hoặc MÃ_KH:MÃ / topic code, or PLAN:CODE.")
@click.option("--plan", "plan_code", default=None, help="Mã kế hoạch khi nhiều kế hoạch trùng mã chủ đề / plan code.")
@click.option("--text", default=None, help="Nội dung / the text.")
@click.option("--text-file", default=None, metavar="FILE", help="Đọc nội dung từ tệp (UTF-8, '-' = stdin) / "
              "read the text from a file.")
@click.option("--lang", default="vi", show_default=True, help="Ngôn ngữ của nội dung / language of the text.")
@click.option("--audio", "audio_files", multiple=True, type=click.Path(path_type=Path),
              help="Tệp ghi âm (lặp lại được) / a recording (repeatable).")
@click.option("--audio-lang", "audio_langs", multiple=True,
              help="Ngôn ngữ của từng --audio, theo thứ tự (mặc định --lang) / language of each --audio, in order.")
@click.option("--channel", "channels", multiple=True, type=click.Choice(content.ITEM_CHANNELS),
              help="Kênh (mặc định cả hai) / channel (default both).")
@click.option("--valid-from", default=None, help="Có hiệu lực từ / valid from: YYYY-MM-DD[ HH:MM] (giờ địa phương).")
@click.option("--valid-until", default=None, help="Hết hiệu lực / valid until: YYYY-MM-DD[ HH:MM] "
              "(chỉ ngày = hết ngày đó / a date means the end of that day).")
@click.option("--priority", type=click.Choice(["normal", "priority", "emergency"]), default="normal",
              show_default=True, help="Mức ưu tiên / priority.")
@click.option("--repeat", type=int, default=None,
              help="Số lần đọc trong một bản tin (mặc định 1, khẩn cấp 2) / times read per bulletin.")
@click.option("--sms-text", default=None, help="Nội dung SMS ngắn hơn / a shorter text for SMS.")
@click.option("--approve", is_flag=True, help="Duyệt luôn / approve now (mặc định là nháp / default draft).")
def content_add(title: str, topic: str, plan_code: str | None, text: str | None, text_file: str | None,
                lang: str, audio_files: tuple[Path, ...], audio_langs: tuple[str, ...], channels: tuple[str, ...],
                valid_from: str | None, valid_until: str | None, priority: str, repeat: int | None,
                sms_text: str | None, approve: bool) -> None:
    """Thêm một tin / add a content item; prints its id."""
    if text is not None and text_file is not None:
        raise InputError("dùng --text hoặc --text-file, không cả hai / use --text or --text-file, not both")
    if text_file is not None:
        text = _read_text_file(text_file)
    if len(audio_langs) > len(audio_files):
        raise InputError("nhiều --audio-lang hơn --audio / more --audio-lang than --audio", field="--audio-lang")
    audio: dict[str, str] = {}
    for index, path in enumerate(audio_files):
        audio_lang = audio_langs[index] if index < len(audio_langs) else lang
        key = audio_lang.strip().lower()
        if key in audio:
            raise InputError(f"hai tệp ghi âm cho ngôn ngữ '{key}' / two recordings for language '{key}'",
                             field="--audio-lang")
        audio[key] = str(path)
    app = get_app()
    spec = content.spec_from_options(
        dict(title=title, topic=topic, plan=plan_code, text=text, lang=lang, audio=audio,
             channels=list(channels) or None, priority=priority, repeat=repeat, valid_from=valid_from,
             valid_until=valid_until, sms_text=sms_text, status="approved" if approve else "draft"),
        app.config.broadcaster.timezone,
    )
    with content.StagedFiles() as staged, app.session() as session:
        item = content.add_item(session, spec, recordings_dir=app.config.recordings_dir, staged=staged,
                                emergency_repeat=app.config.audio.emergency_repeat, base_dir=Path.cwd(), cli=True,
                                by=cli_signer())
        item_id, status, item_channels = item.id, item.status, item.channels
        warnings = _period_warnings(app, session, [item.topic_id])
    click.echo(item_id)
    note = f"Đã thêm tin / item added: {item_id} ({STATUS_LABELS[status]}; {', '.join(item_channels)})"
    if status == ItemStatus.DRAFT:
        note += f" — duyệt bằng / approve with: broadcaster content approve {item_id}"
    click.echo(note, err=True)
    for warning in warnings:
        click.echo(warning, err=True)


def _period_warnings(app, session, topic_ids: list[int | None]) -> list[str]:  # noqa: ANN001
    """A line per plan whose period does not include today (station date)."""
    today = local(utcnow(), app.config.broadcaster.timezone).date()
    found = plans.plans_of_topics(session, [t for t in set(topic_ids) if t is not None])
    return [w for w in (plans.period_warning(plan, today) for plan in found) if w]


@content_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def content_import(file: Path) -> None:
    """Nhập tin từ tệp TOML hoặc CSV (tất cả hoặc không) / import items, all-or-nothing.

    Định dạng tệp / file format: docs/content-format.md (mẫu / example:
    examples/content/ninh-thuan-2023.toml). Một tin sai thì không nhập gì / one bad item, nothing imported.
    """
    app = get_app()
    parsed = content.read_content_file(file, app.config.broadcaster.timezone)
    with content.StagedFiles() as staged, app.session() as session:
        items = content.import_items(session, parsed, recordings_dir=app.config.recordings_dir, staged=staged,
                                     emergency_repeat=app.config.audio.emergency_repeat, by=cli_signer())
        rows = [(item.id, item.status) for item in items]
        warnings = _period_warnings(app, session, [item.topic_id for item in items])
    drafts = sum(1 for _, status in rows if status == ItemStatus.DRAFT)
    click.echo(f"Đã nhập / imported: {len(rows)} tin/items (số/ids {rows[0][0]}–{rows[-1][0]}), "
               f"{drafts} nháp/draft")
    for warning in warnings:
        click.echo(warning, err=True)


def _item_data(session, item, labels, tz: str, *, full: bool = False) -> dict:
    texts = content.item_texts(session, item)
    plan_code, topic_code, topic_title = labels.get(item.topic_id, (None, None, None))
    data = {
        "id": item.id, "title": item.title, "plan": plan_code, "topic": topic_code, "status": item.status,
        "priority": item.priority, "repeat": content.effective_repeat(item), "channels": item.channels,
        "languages": list(texts), "recordings": [lang for lang, row in texts.items() if row.audio_path],
        "valid_from": fmt_dt(item.valid_from, tz) or None, "valid_until": fmt_dt(item.valid_until, tz) or None,
    }
    if full:
        data.update({
            "topic_title": topic_title, "sms_text": item.sms_text, "timezone": tz,
            "created_at": item.created_at, "updated_at": item.updated_at,
            "approved_by": item.approved_by, "approved_at": fmt_dt(item.approved_at, tz) or None,
            "announced_by": item.announced_by, "announced_at": fmt_dt(item.announced_at, tz) or None,
            "texts": {lang: {"text": row.text, "audio_path": row.audio_path,
                             "audio_seconds": _seconds(row.audio_path)} for lang, row in texts.items()},
        })
        try:
            data["sms_body"] = content.sms_body(session, item) if "sms" in item.channels else None
        except InputError:
            data["sms_body"] = None
    return data


def _seconds(path: str | None) -> float | None:
    if not path:
        return None
    try:
        return round(content.probe_duration(Path(path)), 1)
    except (ValueError, OSError):
        return None


def _valid_text(data: dict) -> str:
    if not data["valid_from"] and not data["valid_until"]:
        return ""
    return f"{data['valid_from'] or '…'} → {data['valid_until'] or '…'}"


@content_group.command("list")
@click.option("--status", type=click.Choice([s.value for s in ItemStatus]), default=None,
              help="Lọc theo trạng thái (mặc định: trừ tin đã ngừng) / filter by status (default: all but retired).")
@click.option("--topic", default=None, help="Lọc theo chủ đề / filter by topic (CODE or PLAN:CODE).")
@click.option("--channel", type=click.Choice(content.ITEM_CHANNELS), default=None, help="Lọc theo kênh / by channel.")
@json_option
def content_list(status: str | None, topic: str | None, channel: str | None, as_json: bool) -> None:
    """Liệt kê tin / list content items."""
    app = get_app()
    tz = app.config.broadcaster.timezone
    with app.session() as session:
        labels = content.topic_labels(session)
        data = [_item_data(session, item, labels, tz)
                for item in content.list_items(session, status=status, topic=topic, channel=channel)]
    if as_json:
        echo_json(data)
        return
    echo_table(["ID", "Tiêu đề/title", "Chủ đề/topic", "Trạng thái/status", "Ưu tiên/priority", "Kênh/channels",
                "Ngôn ngữ/langs", "Hiệu lực/valid"],
               ([d["id"], d["title"], d["topic"], STATUS_LABELS.get(d["status"], d["status"]), d["priority"],
                 ", ".join(d["channels"]),
                 ", ".join(f"{lang}{' (ghi âm/rec)' if lang in d['recordings'] else ''}" for lang in d["languages"]),
                 _valid_text(d)] for d in data),
               title="Tin bài / content items", optional=[6, 4, 5, 7])


@content_group.command("show")
@click.argument("item_id", type=int)
@json_option
def content_show(item_id: int, as_json: bool) -> None:
    """Mọi thông tin của một tin / everything about one item."""
    app = get_app()
    tz = app.config.broadcaster.timezone
    with app.session() as session:
        item = content.get_item(session, item_id)
        data = _item_data(session, item, content.topic_labels(session), tz, full=True)
    if as_json:
        echo_json(data)
        return
    echo_wrapped(f"#{data['id']} {data['title']}")
    topic = f"{data['plan']}:{data['topic']} — {data['topic_title']}" if data["topic"] else \
        "(không có, tin khẩn ngoài kế hoạch / none: an emergency item outside the plans)"
    echo_wrapped(f"Chủ đề / topic: {topic}")
    echo_wrapped(f"Trạng thái / status: {STATUS_LABELS.get(data['status'], data['status'])}")
    if data["approved_at"]:
        echo_wrapped(f"Duyệt bởi / approved by: {data['approved_by'] or '?'}, {data['approved_at']}")
    if data["announced_at"]:
        echo_wrapped(f"Thông báo khẩn bởi / announced by: {data['announced_by'] or '?'}, {data['announced_at']}")
    echo_wrapped(f"Ưu tiên / priority: {data['priority']}, đọc / read {data['repeat']} lần/times")
    echo_wrapped(f"Kênh / channels: {', '.join(data['channels'])}")
    if _valid_text(data):
        echo_wrapped(f"Hiệu lực / valid ({tz}): {_valid_text(data)}")
    for lang, text in data["texts"].items():
        if text["text"]:
            echo_wrapped(f"[{lang}] {text['text']}")
        if text["audio_path"]:
            length = f"{text['audio_seconds']} s" if text["audio_seconds"] is not None else \
                "KHÔNG ĐỌC ĐƯỢC / UNREADABLE"
            echo_wrapped(f"[{lang}] ghi âm / recording: {text['audio_path']} ({length})")
    if data["sms_body"]:
        echo_wrapped(f"SMS: {data['sms_body']}")


EDIT_LABELS = {"title": "tiêu đề/title", "topic": "chủ đề/topic", "text": "nội dung/text", "sms_text": "SMS",
               "channels": "kênh/channels", "priority": "ưu tiên/priority", "repeat": "số lần đọc/repeat",
               "valid_from": "hiệu lực từ/valid from", "valid_until": "hết hiệu lực/valid until"}


@content_group.command("edit")
@click.argument("item_id", type=int)
@click.option("--title", default=None, help="Tiêu đề mới / new title.")
@click.option("--topic", default=None, help="Chủ đề mới: MÃ hoặc MÃ_KH:MÃ / new topic: CODE or PLAN:CODE.")
@click.option("--text", default=None, help="Nội dung tiếng Việt mới / new Vietnamese text.")
@click.option("--text-file", default=None, metavar="FILE", help="Đọc nội dung mới từ tệp (UTF-8, '-' = stdin) / "
              "read the new text from a file.")
@click.option("--sms-text", default=None, help="Nội dung SMS ngắn mới ('' = bỏ) / new SMS text ('' removes it).")
@click.option("--channel", "channels", multiple=True, type=click.Choice(content.ITEM_CHANNELS),
              help="Kênh (lặp lại được; thay cả danh sách) / channel (repeatable; replaces the list).")
@click.option("--valid-from", default=None, help="Hiệu lực từ / valid from: DD/MM/YYYY [HH:MM] hoặc/or "
              "YYYY-MM-DD [HH:MM], giờ địa phương/local ('' = bỏ / removes it).")
@click.option("--valid-until", default=None, help="Hết hiệu lực / valid until, như/like --valid-from "
              "(chỉ ngày = hết ngày đó / a date means the end of that day; '' = bỏ / removes it).")
@click.option("--priority", type=click.Choice(["normal", "priority", "emergency"]), default=None,
              help="Mức ưu tiên / priority.")
@click.option("--repeat", type=int, default=None, help="Số lần đọc trong một bản tin / times read per bulletin.")
@click.option("--approve", is_flag=True, help="Duyệt luôn sau khi sửa (nếu không, tin đã duyệt trở lại nháp) / "
              "approve after the edit (otherwise an approved item goes back to draft).")
def content_edit(item_id: int, title: str | None, topic: str | None, text: str | None, text_file: str | None,
                 sms_text: str | None, channels: tuple[str, ...], valid_from: str | None, valid_until: str | None,
                 priority: str | None, repeat: int | None, approve: bool) -> None:
    """Sửa một tin (mọi kiểm tra như khi thêm) / correct an item (checked as when added).

    Bản tin đã dựng trước sẽ được dựng lại / bulletins rendered ahead are rendered again.
    """
    if text is not None and text_file is not None:
        raise InputError("dùng --text hoặc --text-file, không cả hai / use --text or --text-file, not both")
    if text_file is not None:
        text = _read_text_file(text_file)
    app = get_app()
    changes = dict(title=title, topic=topic, text=text, sms_text=sms_text, channels=list(channels) or None,
                   priority=priority, repeat=repeat, valid_from=valid_from, valid_until=valid_until)
    tz = app.config.broadcaster.timezone
    with app.session() as session:
        edit = content.edit_item(session, item_id, changes, tz_name=tz, approve=approve, by=cli_signer())
        title_now = edit.item.title
    if not edit.changed:
        echo_wrapped(f"Không có gì thay đổi / nothing changed: {item_id} {title_now}")
        return
    echo_wrapped(f"Đã sửa tin / item edited: {item_id} {title_now}")
    echo_changes([(key, fmt_dt(old, tz) if isinstance(old, datetime) else old,
                   fmt_dt(new, tz) if isinstance(new, datetime) else new) for key, old, new in edit.changes],
                 EDIT_LABELS)
    if edit.status_before != edit.status_after:
        echo_changes([("status", STATUS_LABELS[edit.status_before], STATUS_LABELS[edit.status_after])],
                     {"status": "trạng thái/status"})
        if edit.status_after == ItemStatus.DRAFT:
            echo_wrapped(f"Duyệt lại bằng / approve again with: broadcaster content approve {item_id}")


def _set_status(item_id: int, status: ItemStatus, done: str, already: str) -> None:
    with get_app().session() as session:
        item, changed = content.set_status(session, item_id, status, by=cli_signer())
        title = item.title
    click.echo(f"{done if changed else already}: {item_id} {title}")


@content_group.command("approve")
@click.argument("item_id", type=int)
def content_approve(item_id: int) -> None:
    """Duyệt tin để phát / approve an item for broadcast."""
    _set_status(item_id, ItemStatus.APPROVED, "Đã duyệt / approved", "Đã duyệt từ trước / already approved")


@content_group.command("retire")
@click.argument("item_id", type=int)
def content_retire(item_id: int) -> None:
    """Ngừng phát tin / retire an item (không xóa / it is kept for reports)."""
    _set_status(item_id, ItemStatus.RETIRED, "Đã ngừng / retired", "Đã ngừng từ trước / already retired")


COMMANDS = [content_group]
