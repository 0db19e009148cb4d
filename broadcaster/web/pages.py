"""The console's pages and actions, each through the core function the CLI uses for the same thing."""

from __future__ import annotations

import csv
import io
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, abort, flash, g, redirect, render_template, request, send_file, url_for
from sqlmodel import select

from .. import content, reports, schedules
from ..app import App
from ..deliveries import BulletinStatus, CampaignStatus
from ..errors import BroadcasterError, InputError
from ..fileutil import private_dir
from ..models import Bulletin, Campaign, ContactGroup, ContentItem, ItemStatus, Station
from ..phones import mask_phone
from ..plans import list_plans
from ..stations import list_stations
from ..timeutil import local, parse_local_datetime, utcnow
from ..users import Role
from .app import lang as page_lang
from .app import requires, say

RECORDING_SUFFIXES = (".mp3", ".wav", ".ogg", ".oga", ".opus", ".m4a", ".flac")
TODAY_SLOTS_PER_STATION = 3
TODAY_HOURS_AHEAD = 48
LOG_FILTERS = ("since", "until", "channel", "status", "topic", "station", "plan", "item", "limit")
STATUS_LABELS = {"draft": ("nháp", "draft"), "approved": ("đã duyệt", "approved"),
                 "retired": ("đã ngừng", "retired")}


def label(pair: tuple[str, str] | None, fallback: str = "") -> str:
    return say(*pair) if pair else fallback


def log_table(rows: list[reports.LogRow], tz_name: str) -> tuple[list[str], list[list[Any]]]:
    """The delivery log as the console shows and downloads it: station time, phone numbers masked."""
    headers = [say("Số", "Id"), say("Thời điểm", "Time"), say("Kênh", "Channel"), say("Trạng thái", "Status"),
               say("Đài", "Station"), say("Chủ đề", "Topic"), say("Tin", "Item"), say("Người nhận", "Recipient"),
               say("Giây", "Seconds"), say("Lỗi", "Error"), say("Người duyệt", "Signed off by")]
    lang = page_lang()
    table = []
    for row in rows:
        status = reports.DELIVERY_STATUS_LABELS.get(row.status)
        table.append([
            row.id, local(row.created_at, tz_name).strftime("%Y-%m-%d %H:%M:%S"), row.channel,
            (status[1] if lang == "en" else status[0]) if status else row.status, row.station or "",
            row.topic or "", f"{row.item_id}: {row.item_title}" if row.item_id else "",
            mask_phone(row.recipient) if row.recipient else "",
            round(row.duration_s, 1) if row.duration_s is not None else "", row.error or "",
            row.signed_off(tz_name, lang)])
    return headers, table


def register(web: Flask, app: App) -> None:  # noqa: C901 - one flat list of routes reads best
    tz_name = app.config.broadcaster.timezone

    def work_dir(name: str) -> Path:
        return private_dir(app.config.data_dir / name)

    @web.errorhandler(BroadcasterError)
    @web.errorhandler(ValueError)  # the core's parse errors name their field, as the CLI prints them
    def _core_error(error: Exception):  # noqa: ANN202
        return render_template("error.html", code=400, message=str(error), back=request.referrer), 400

    # ------------------------------------------------------------------ today
    @web.route("/")
    def today():  # noqa: ANN202
        from ..scheduling.bulletins import Bulletins
        from ..scheduling.status import read_status

        state = read_status(app)
        now = utcnow()
        with app.read_session() as session:
            on_air = []
            for bulletin in session.exec(select(Bulletin).where(Bulletin.status == BulletinStatus.PLAYING)).all():
                station = session.get(Station, bulletin.station_id) if bulletin.station_id else None
                on_air.append({"bulletin": bulletin, "station": station.code if station else ""})
            slots = Bulletins(app).upcoming(session, now, now + timedelta(hours=TODAY_HOURS_AHEAD))
            per_station: dict[str, list[dict]] = {}
            for slot in slots:
                kept = per_station.setdefault(slot["station"], [])
                if len(kept) < TODAY_SLOTS_PER_STATION:
                    kept.append(slot)
            headers, recent = log_table(reports.query_log(session, tz_name=tz_name, limit=10), tz_name)
        return render_template("today.html", state=state, on_air=on_air, per_station=per_station,
                               headers=headers, recent=recent)

    # -------------------------------------------------------------------- log
    def _log_rows(limit_default: int | None) -> list[reports.LogRow]:
        args = request.args
        limit = args.get("limit", type=int)
        item = args.get("item", type=int)
        with app.read_session() as session:
            return reports.query_log(
                session, tz_name=tz_name, since=args.get("since") or None, until=args.get("until") or None,
                channel=args.get("channel") or None, statuses=[s for s in args.getlist("status") if s],
                topic=args.get("topic") or None, station=args.get("station") or None,
                plan=args.get("plan") or None, item_id=item, limit=limit if limit else limit_default)

    @web.route("/log")
    def log():  # noqa: ANN202
        headers, rows = log_table(_log_rows(200), tz_name)
        with app.read_session() as session:
            stations = [s.code for s in list_stations(session)]
        query = {key: request.args.getlist(key) for key in LOG_FILTERS if request.args.get(key)}
        return render_template("log.html", headers=headers, rows=rows, stations=stations, query=query,
                               statuses=reports.KNOWN_STATUSES, args=request.args)

    @web.route("/log/download.<fmt>")
    def log_download(fmt: str):  # noqa: ANN202
        headers, rows = log_table(_log_rows(None), tz_name)
        stamp = local(utcnow(), tz_name).strftime("%Y%m%d-%H%M")
        if fmt == "csv":
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(headers)
            writer.writerows(rows)
            data = ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM: Excel reads it as UTF-8
            return send_file(io.BytesIO(data), mimetype="text/csv", as_attachment=True,
                             download_name=f"nhat-ky-{stamp}.csv")
        if fmt == "xlsx":
            from openpyxl import Workbook

            book = Workbook()
            sheet = book.active
            sheet.title = say("Nhật ký", "Log")
            sheet.append(headers)
            for row in rows:
                sheet.append(row)
            sheet.freeze_panes = "A2"
            buffer = io.BytesIO()
            book.save(buffer)
            buffer.seek(0)
            return send_file(buffer, as_attachment=True, download_name=f"nhat-ky-{stamp}.xlsx",
                             mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        abort(404)

    # ---------------------------------------------------------------- content
    def _topics(session) -> list[tuple[str, str]]:  # noqa: ANN001
        return sorted((f"{plan}:{code}", f"{plan}:{code} — {title}")
                      for plan, code, title in content.topic_labels(session).values())

    @web.route("/content")
    def content_list():  # noqa: ANN202
        status = request.args.get("status") or None
        if status not in (None, *ItemStatus):
            abort(404)
        with app.read_session() as session:
            labels = content.topic_labels(session)
            items = [(item, labels.get(item.topic_id)) for item in content.list_items(session, status=status)]
        return render_template("content_list.html", items=items, status=status, labels=STATUS_LABELS)

    def _form_values(form) -> dict[str, Any]:  # noqa: ANN001
        return {"title": form.get("title"), "topic": form.get("topic") or None, "text": form.get("text"),
                "sms_text": form.get("sms_text"), "channels": form.getlist("channels") or None,
                "priority": form.get("priority") or None, "repeat": form.get("repeat", type=int),
                "valid_from": form.get("valid_from"), "valid_until": form.get("valid_until")}

    @web.route("/content/new", methods=["GET", "POST"])
    @requires(Role.OPERATOR)
    def content_new():  # noqa: ANN202
        error = None
        values = _form_values(request.form) if request.method == "POST" else {}
        if request.method == "POST":
            approve = request.form.get("approve") == "1"
            if approve and not may_approve():
                abort(403)
            data = {key: value for key, value in values.items() if value not in (None, "")}
            data["status"] = "approved" if approve else "draft"
            try:
                spec = content.spec_from_options(data, tz_name)
                with content.StagedFiles() as staged, app.session() as session:
                    item = content.add_item(session, spec, recordings_dir=app.config.recordings_dir,
                                            staged=staged, emergency_repeat=app.config.audio.emergency_repeat,
                                            by=g.user.name)
                    item_id = item.id
            except (BroadcasterError, ValueError) as exc:
                error = str(exc)
            else:
                flash(say(f"Đã thêm tin số {item_id}.", f"Item {item_id} added."))
                return redirect(url_for("content_view", item_id=item_id))
        with app.read_session() as session:
            topics = _topics(session)
        return render_template("content_form.html", item=None, values=values, topics=topics, error=error), \
            400 if error else 200

    def may_approve() -> bool:
        from ..users import may

        return may(g.user.role, Role.APPROVER)

    @web.route("/content/<int:item_id>")
    def content_view(item_id: int):  # noqa: ANN202
        with app.read_session() as session:
            item = content.get_item(session, item_id)
            texts = content.item_texts(session, item)
            topic = content.topic_labels(session).get(item.topic_id)
            campaigns = session.exec(select(Campaign).where(Campaign.item_id == item_id)).all()
            headers, deliveries = log_table(reports.query_log(session, tz_name=tz_name, item_id=item_id, limit=20),
                                            tz_name)
        return render_template("content_view.html", item=item, texts=texts, topic=topic, labels=STATUS_LABELS,
                               campaigns=campaigns, headers=headers, deliveries=deliveries,
                               suffixes=", ".join(RECORDING_SUFFIXES))

    @web.route("/content/<int:item_id>/edit", methods=["GET", "POST"])
    @requires(Role.OPERATOR)
    def content_edit(item_id: int):  # noqa: ANN202
        error = None
        with app.read_session() as session:
            item = content.get_item(session, item_id)
            current = content.item_values(session, item)
            topics = _topics(session)
        if request.method == "POST":
            approve = request.form.get("approve") == "1"
            if approve and not may_approve():
                abort(403)
            values = _form_values(request.form)
            for key in ("valid_from", "valid_until", "sms_text"):
                values[key] = values[key] or ""  # an emptied field clears it
            values["text"] = values["text"] or None  # an item that is only a recording keeps having no text
            try:
                with app.session() as session:
                    edit = content.edit_item(session, item_id, values, tz_name=tz_name, approve=approve,
                                             by=g.user.name)
            except (BroadcasterError, ValueError) as exc:
                error = str(exc)
            else:
                if not edit.changed:
                    flash(say("Không có gì thay đổi.", "Nothing changed."))
                elif edit.status_before == ItemStatus.APPROVED and edit.status_after == ItemStatus.DRAFT:
                    flash(say("Đã sửa; tin trở lại nháp và cần duyệt lại.",
                              "Edited: the item is a draft again and needs approval."))
                else:
                    flash(say("Đã sửa tin.", "Item edited."))
                return redirect(url_for("content_view", item_id=item_id))
        else:
            values = {**current, "valid_from": _local_text(current["valid_from"]),
                      "valid_until": _local_text(current["valid_until"])}
        return render_template("content_form.html", item=item, values=values, topics=topics, error=error), \
            400 if error else 200

    def _local_text(moment) -> str:  # noqa: ANN001
        """As the form shows it, to the second when it has seconds: sent back unchanged, it stays unchanged."""
        if not moment:
            return ""
        shown = local(moment, tz_name)
        return shown.strftime("%Y-%m-%d %H:%M:%S" if shown.second else "%Y-%m-%d %H:%M")

    def _set_status(item_id: int, status: ItemStatus, done: tuple[str, str]):  # noqa: ANN202
        with app.session() as session:
            _item, changed = content.set_status(session, item_id, status, by=g.user.name)
        flash(say(*done) if changed else say("Không có gì thay đổi.", "Nothing changed."))
        return redirect(url_for("content_view", item_id=item_id))

    @web.route("/content/<int:item_id>/approve", methods=["POST"])
    @requires(Role.APPROVER)
    def content_approve(item_id: int):  # noqa: ANN202
        return _set_status(item_id, ItemStatus.APPROVED, ("Đã duyệt tin.", "Item approved."))

    @web.route("/content/<int:item_id>/retire", methods=["POST"])
    @requires(Role.APPROVER)
    def content_retire(item_id: int):  # noqa: ANN202
        return _set_status(item_id, ItemStatus.RETIRED, ("Đã ngừng phát tin.", "Item retired."))

    @web.route("/content/<int:item_id>/recording", methods=["POST"])
    @requires(Role.OPERATOR)
    def content_recording(item_id: int):  # noqa: ANN202
        upload = request.files.get("recording")
        if upload is None or not upload.filename:
            raise InputError("chưa chọn tệp / no file chosen", field="recording")
        suffix = Path(upload.filename).suffix.lower()
        if suffix not in RECORDING_SUFFIXES:
            raise InputError(f"loại tệp không nhận / file type not accepted ({', '.join(RECORDING_SUFFIXES)})",
                             field="recording")
        temp = work_dir("web-uploads") / f"{secrets.token_hex(8)}{suffix}"
        try:
            upload.save(temp)
            with content.StagedFiles() as staged, app.session() as session:
                content.set_recording(session, item_id, request.form.get("lang") or "vi", temp,
                                      recordings_dir=app.config.recordings_dir, staged=staged)
        finally:
            temp.unlink(missing_ok=True)
        flash(say("Đã lưu tệp ghi âm; tin cần duyệt lại.", "Recording saved: the item needs approval again."))
        return redirect(url_for("content_view", item_id=item_id))

    @web.route("/content/<int:item_id>/recording/<lang>")
    def content_recording_file(item_id: int, lang: str):  # noqa: ANN202
        with app.read_session() as session:
            row = content.item_texts(session, content.get_item(session, item_id)).get(lang)
        if row is None or not row.audio_path:
            abort(404)
        path = Path(row.audio_path)
        if not path.is_absolute():
            path = app.config.recordings_dir / path
        if not path.is_file():
            abort(404)
        return send_file(path, conditional=True)

    @web.route("/content/<int:item_id>/speech.mp3")
    def content_speech(item_id: int):  # noqa: ANN202
        """The item as it will sound (intro, ident, every language, outro), rendered once per edit."""
        from ..audio.render import Renderer

        with app.read_session() as session:
            item = content.get_item(session, item_id)
            target = work_dir("web-previews") / f"item-{item_id}-{item.updated_at:%Y%m%d%H%M%S%f}.mp3"
            if not target.exists():
                renderer = Renderer(app.config)
                job = renderer.prepare(session, [item], None)
            else:
                job = None
        if job is not None:
            for old in target.parent.glob(f"item-{item_id}-*"):
                old.unlink(missing_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as temp:
                result = renderer.render(job, output=Path(temp) / "speech.mp3")
                result.path.replace(target)
        return send_file(target, mimetype="audio/mpeg", conditional=True)

    # -------------------------------------------------------------- schedules
    @web.route("/schedules")
    def schedule_list():  # noqa: ANN202
        now = utcnow()
        with app.read_session() as session:
            rows = schedules.overview(session, now)
            stations = [s.code for s in list_stations(session)]
            groups = [grp.name for grp in session.exec(select(ContactGroup).order_by(ContactGroup.name)).all()]
            topics = _topics(session)
        return render_template("schedules.html", rows=rows, stations=stations, groups=groups, topics=topics)

    @web.route("/schedules/add", methods=["POST"])
    @requires(Role.OPERATOR)
    def schedule_add():  # noqa: ANN202
        form = request.form
        kind = form.get("kind", "cron")
        with app.session() as session:
            from ..stations import get_station

            station = get_station(session, form.get("station", ""))
            at_text = (form.get("at") or "").strip()
            at = parse_local_datetime(at_text, station.timezone) if kind == "at" and at_text else None
            schedule = schedules.add_schedule(
                session, station_code=station.code, channel=form.get("channel", "loudspeaker"),
                cron=(form.get("cron") or None) if kind == "cron" else None, at=at,
                length_s=schedules.parse_length(form.get("length") or "15m"),
                group_name=form.get("group") or None, topic_codes=[t for t in form.getlist("topics") if t],
                name=form.get("name", ""))
            schedule_id = schedule.id
        flash(say(f"Đã thêm lịch #{schedule_id}.", f"Schedule #{schedule_id} added."))
        return redirect(url_for("schedule_list"))

    @web.route("/schedules/<int:schedule_id>/<action>", methods=["POST"])
    @requires(Role.OPERATOR)
    def schedule_pause(schedule_id: int, action: str):  # noqa: ANN202
        if action not in ("pause", "resume"):
            abort(404)
        with app.session() as session:
            schedules.set_paused(session, schedule_id, action == "pause")
        flash(say(f"Đã tạm dừng lịch #{schedule_id}.", f"Schedule #{schedule_id} paused.") if action == "pause"
              else say(f"Đã chạy lại lịch #{schedule_id}.", f"Schedule #{schedule_id} resumed."))
        return redirect(url_for("schedule_list"))

    # -------------------------------------------------------------------- sms
    @web.route("/sms")
    def sms_campaigns():  # noqa: ANN202
        from ..deliveries import campaign_counts

        with app.read_session() as session:
            groups = {grp.id: grp.name for grp in session.exec(select(ContactGroup)).all()}
            rows = []
            for campaign in session.exec(select(Campaign).order_by(Campaign.id.desc())).all():
                item = session.get(ContentItem, campaign.item_id)
                rows.append({"campaign": campaign, "item": item.title if item else "",
                             "group": groups.get(campaign.group_id, ""),
                             "counts": {k: v for k, v in campaign_counts(session, campaign.id).items() if v}})
        return render_template("sms.html", rows=rows, open_status=CampaignStatus.OPEN)

    @web.route("/sms/<int:campaign_id>/cancel", methods=["POST"])
    @requires(Role.APPROVER)
    def sms_cancel(campaign_id: int):  # noqa: ANN202
        from ..deliveries import cancel_campaign

        result = cancel_campaign(app.ready_engine(), campaign_id)
        flash(say(f"Đã hủy chiến dịch {campaign_id}: {result.cancelled} tin sẽ không gửi.",
                  f"Campaign {campaign_id} cancelled: {result.cancelled} messages will not be sent."))
        return redirect(url_for("sms_campaigns"))

    # ----------------------------------------------------------------- report
    def _report(with_log: bool):  # noqa: ANN202
        args = request.args
        with app.read_session() as session:
            plan_codes = [p.code for p in list_plans(session)]
            stations = [s.code for s in list_stations(session)]
            plan = args.get("plan") or (plan_codes[0] if plan_codes else None)
            report = None
            if plan:
                report = reports.build_report(session, plan, args.get("period") or None, args.get("station") or None,
                                              None, tz_name=tz_name, commune=app.config.broadcaster.commune,
                                              with_log=with_log)
        return report, plan, plan_codes, stations

    @web.route("/report")
    def report():  # noqa: ANN202
        from ..reports import formats

        built, plan, plan_codes, stations = _report(with_log=False)
        views, header, rules = [], [], []
        if built is not None:
            lang = page_lang()
            header = formats.header_lines(built, lang)
            rules = formats.rule_lines(built, lang)
            views = [(view, [[formats.cell_text(value, kind, lang) for value, kind in zip(row, view.kinds,
                                                                                          strict=False)]
                             for row in view.rows]) for view in formats.views(built, lang)]
        query = {k: v for k, v in {"plan": plan, "period": request.args.get("period"),
                                   "station": request.args.get("station")}.items() if v}
        return render_template("report.html", report=built, views=views, header=header, rules=rules, plan=plan,
                               plan_codes=plan_codes,
                               stations=stations, query=query, args=request.args)

    @web.route("/report/chart.png")
    def report_chart():  # noqa: ANN202
        from ..reports import chart

        built, *_ = _report(with_log=False)
        if built is None:
            abort(404)
        return _file_response(lambda path: chart.write_chart(built, path, page_lang()), "chart.png", "image/png",
                              attachment=False)

    @web.route("/report/download.<fmt>")
    def report_download(fmt: str):  # noqa: ANN202
        from ..reports import document

        if fmt not in ("xlsx", "docx"):
            abort(404)
        built, plan, *_ = _report(with_log=fmt == "xlsx")
        if built is None:
            abort(404)
        name = f"bao-cao-{plan.replace('/', '-')}.{fmt}"
        if fmt == "xlsx":
            return _file_response(lambda path: document.write_xlsx(built, path, page_lang()), name,
                                  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        return _file_response(lambda path: document.write_docx(built, path), name,
                              "application/vnd.openxmlformats-officedocument.wordprocessingml.document")

    def _file_response(write, name: str, mimetype: str, *, attachment: bool = True):  # noqa: ANN001, ANN202
        with tempfile.TemporaryDirectory(dir=work_dir("web-downloads")) as temp:
            path = Path(temp) / name
            write(path)
            data = path.read_bytes()
        return send_file(io.BytesIO(data), mimetype=mimetype, as_attachment=attachment, download_name=name)

    # --------------------------------------------------------------- announce
    @web.route("/announce", methods=["GET", "POST"])
    def announce():  # noqa: ANN202
        from ..announcements import announce as send_announcement

        with app.read_session() as session:
            stations = [s.code for s in list_stations(session)]
            groups = [grp.name for grp in session.exec(select(ContactGroup).order_by(ContactGroup.name)).all()]
        form = request.form
        values = {"text": (form.get("text") or "").strip(), "stations": form.getlist("stations"),
                  "sms_group": form.get("sms_group") or "", "until": (form.get("until") or "").strip()}
        if request.method == "GET":
            return render_template("announce.html", stations=stations, groups=groups, values=values, error=None)
        error = None
        until = None
        try:
            if not values["text"]:
                raise InputError("nội dung thông báo trống / announcement text is empty", field="text")
            if not values["stations"] and not values["sms_group"]:
                raise InputError("chọn ít nhất một đài hoặc nhóm SMS / choose a station or an SMS group",
                                 field="stations")
            unknown = set(values["stations"]) - set(stations)
            if unknown or (values["sms_group"] and values["sms_group"] not in groups):
                raise InputError("đài hoặc nhóm không có / unknown station or group", field="stations")
            if values["until"]:
                until = parse_local_datetime(values["until"], tz_name)
                if until <= utcnow():
                    raise InputError("giờ kết thúc đã qua / 'until' is in the past", field="until")
        except (BroadcasterError, ValueError) as exc:
            error = str(exc)
        if error or form.get("confirmed") != "1":
            if not error:
                from ..scheduling import wakeup

                wakeup.poke(app.config, wakeup.GET_READY)  # the daemon's audio child starts while the operator reads
            return render_template("announce.html" if error else "announce_confirm.html", stations=stations,
                                   groups=groups, values=values, error=error), 400 if error else 200
        result = send_announcement(app, text=values["text"], station_codes=values["stations"],
                                   sms_group=values["sms_group"] or None, until=until, wait=False, by=g.user.name)
        where = say("đã chuyển cho daemon", "handed to the daemon") if result.handed_to_daemon else \
            say("đã phát trực tiếp", "aired directly")
        flash(say(f"Đã gửi thông báo khẩn (tin số {result.item_id}, {where}).",
                  f"Emergency announcement sent (item {result.item_id}, {where})."))
        return redirect(url_for("log", item=result.item_id))

