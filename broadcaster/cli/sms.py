"""``sms`` (preview, send, resume, status) and ``webhook`` (serve): thin wrappers over ``broadcaster.sms``."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..timeutil import utcnow
from .common import BroadcasterGroup, echo_json, echo_table, fmt_dt, get_app, json_option


def money(amount: float, currency: str) -> str:
    """850 VND → ``850 VND``; 21250 → ``21.250 VND`` (Vietnamese thousands); other currencies to 4 decimals."""
    if currency.upper() == "VND":
        return f"{round(amount):,}".replace(",", ".") + " VND"
    text = f"{amount:,.4f}".rstrip("0").rstrip(".")
    return f"{text} {currency}"


# --------------------------------------------------------------------------
# sms
# --------------------------------------------------------------------------


@click.group("sms", cls=BroadcasterGroup)
def sms_group() -> None:
    """Tin nhắn SMS tới người dân / SMS to residents."""


@sms_group.command("preview")
@click.argument("text", required=False)
@click.option("--item", "item_id", type=int, help="Xem tin số ID / preview content item ID.")
@click.option("--group", "group_name", help="Nhân chi phí với số người nhận của nhóm / multiply the cost by "
                                            "the group's recipients.")
@click.option("--keep-diacritics", is_flag=True, help="Giữ dấu tiếng Việt (UCS-2, đắt hơn) / keep the "
                                                     "diacritics (UCS-2, costs more).")
@json_option
def sms_preview(text: str | None, item_id: int | None, group_name: str | None, keep_diacritics: bool,
                as_json: bool) -> None:
    """Xem trước tin nhắn: nội dung, mã hóa, số tin, chi phí / preview an SMS: text, encoding, segments, cost."""
    from ..sms.encoding import encode_sms, non_gsm_characters, segment_cost

    if (text is None) == (item_id is None):
        raise click.UsageError("Cần TEXT hoặc --item ID (một trong hai) / give TEXT or --item ID (one of them)")
    app = get_app()
    config = app.config
    recipients: int | None = None
    if item_id is not None or group_name:
        with app.session() as session:
            if item_id is not None:
                from ..content import get_item, sms_body

                text = sms_body(session, get_item(session, item_id))
            if group_name:
                from ..contacts import count_recipients

                recipients = count_recipients(session, group_name)
    strip = bool(config.sms.strip_diacritics) and not keep_diacritics
    enc = encode_sms(text or "", strip=strip)
    price = float(config.sms.price_per_segment)
    currency = str(config.sms.currency)
    per_recipient = segment_cost(enc, price)
    data: dict[str, Any] = {
        "text": enc.text, "encoding": enc.encoding, "diacritics_stripped": strip, "characters": enc.characters,
        "units": enc.units, "segments": enc.segments, "price_per_segment": price, "currency": currency,
        "cost_per_recipient": per_recipient,
        "replaced": [{"char": ch, "with": to, "count": n} for ch, to, n in enc.replaced],
    }
    if recipients is not None:
        data.update(group=group_name, recipients=recipients, total_segments=enc.segments * recipients,
                    total_cost=round(per_recipient * recipients, 6))
    if as_json:
        echo_json(data)
        return
    click.echo(f"Nội dung / text: {enc.text}")
    note = "đã bỏ dấu / diacritics stripped" if strip else "giữ nguyên / as written"
    click.echo(f"Mã hóa / encoding: {enc.encoding} ({note})")
    if enc.encoding != "GSM-7":
        odd = "".join(non_gsm_characters(enc.text)[:10])
        click.echo(f"  Ký tự ngoài GSM-7 / characters outside GSM-7: {odd}")
    if enc.replaced:
        click.echo("  Đã thay để giữ GSM-7 / replaced to keep GSM-7:")
        for ch, to, n in enc.replaced:
            shown = ch if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}"  # invisible ones
            click.echo(f"    {shown} → {to if to.strip() else repr(to)}  (×{n})")
    click.echo(f"Số ký tự / characters: {enc.characters}")
    click.echo(f"Số tin / segments: {enc.segments} (tối đa/max {enc.unit_limit_single} một tin, "
               f"{enc.unit_limit_multi} mỗi phần khi ghép / per part when split)")
    click.echo(f"Chi phí mỗi người nhận / cost per recipient: {money(per_recipient, currency)}")
    if recipients is not None:
        click.echo(f"Nhóm / group '{group_name}': {recipients} người nhận / recipients × "
                   f"{enc.segments} = {enc.segments * recipients} tin / segments, "
                   f"{money(per_recipient * recipients, currency)}")


def _summary_line(counts: dict[str, int], segments: int, price: float, currency: str) -> str:
    from ..sms.campaigns import PAID_STATUSES

    paid = sum(counts.get(str(s), 0) for s in PAID_STATUSES)
    parts = [
        f"đã gửi/sent {paid}",
        f"lỗi/failed {counts.get('failed', 0)}",
        f"chờ/pending {counts.get('pending', 0)}",
        f"chưa rõ/uncertain {counts.get('uncertain', 0) + counts.get('sending', 0)}",
        f"bỏ qua/skipped {counts.get('skipped', 0)}",
    ]
    if counts.get("cancelled"):
        parts.append(f"đã hủy/cancelled {counts['cancelled']}")
    return (" · ".join(parts) + f" — {paid * segments} tin/segments, "
            f"chi phí/cost {money(paid * segments * price, currency)}")


def _progress(result) -> None:  # noqa: ANN001
    if not sys.stderr.isatty():
        return
    done = result.total - result.pending
    click.echo(f"\rĐang gửi / sending: {done}/{result.total} "
               f"(lỗi/failed {result.counts.get('failed', 0)})   ", err=True, nl=False)


def _waiting() -> None:
    click.echo("Đang chờ tiến trình khác gửi xong (daemon?)… / waiting for another process that is sending…",
               err=True)


def _report(result, config, tz_name: str) -> None:  # noqa: ANN001
    if sys.stderr.isatty() and result.attempted:
        click.echo("", err=True)
    counts = result.counts
    from ..models import Campaign

    with get_app().session() as session:
        campaign = session.get(Campaign, result.campaign_id)
        segments = campaign.segments if campaign else 1
    click.echo(f"Chiến dịch / campaign {result.campaign_id}: "
               + _summary_line(counts, segments, float(config.sms.price_per_segment), str(config.sms.currency)))
    if result.held == "quiet_hours":
        click.echo(f"Đang giờ yên tĩnh ({config.sms.quiet_hours}): tin được giữ đến "
                   f"{fmt_dt(result.held_until, tz_name)}, daemon hoặc 'broadcaster sms resume' sẽ gửi / "
                   f"quiet hours: held until then; the daemon or 'broadcaster sms resume' sends them")
    elif result.held == "item":
        click.echo(f"Chiến dịch bị giữ lại, không gửi / campaign held, nothing sent: {result.error}")
        result.error = None
    elif result.held == "network":
        click.echo(f"Chờ mạng / waiting for network: không kết nối được nhà mạng, sẽ thử lại lúc "
                   f"{fmt_dt(result.held_until, tz_name)} (daemon hoặc 'broadcaster sms resume') / cannot reach "
                   f"the provider: tried again then")
    elif result.held == "not_before":
        click.echo(f"Hẹn gửi lúc / scheduled for {fmt_dt(result.held_until, tz_name)}: daemon hoặc "
                   f"'broadcaster sms resume' sẽ gửi / the daemon or 'broadcaster sms resume' sends them then")
    if result.overdue:
        click.echo(f"KHẨN CẤP / EMERGENCY: {result.overdue} tin chưa gửi được sau {config.sms.max_age_hours:g} "
                   f"giờ, vẫn tiếp tục thử / messages still unsent after that long: still trying")
    uncertain = counts.get("uncertain", 0)
    if uncertain:
        click.echo(f"{uncertain} tin chưa rõ đã tới Twilio hay chưa: 'broadcaster sms resume' sẽ hỏi Twilio, chỉ "
                   f"gửi lại tin Twilio không có / {uncertain} messages may or may not have left: "
                   f"'sms resume' asks Twilio and sends only those it does not have")
    if result.error:
        raise click.ClickException(result.error)


@sms_group.command("send")
@click.option("--item", "item_id", type=int, required=True, help="Tin số / content item ID.")
@click.option("--group", "group_name", required=True, help="Nhóm người nhận (thôn, bản…) / contact group.")
@click.option("--at", "at_text", metavar="'YYYY-MM-DD HH:MM'", help="Hẹn giờ gửi (giờ địa phương) / send at "
                                                                    "(station time).")
@click.option("--no-wait", is_flag=True, help="Chỉ tạo chiến dịch, để daemon gửi / only create the campaign; "
                                              "the daemon sends it.")
@click.option("--again", is_flag=True, help="Gửi lại tin đã gửi tới nhóm này / send again an item this group "
                                            "already received.")
def sms_send(item_id: int, group_name: str, at_text: str | None, no_wait: bool, again: bool) -> None:
    """Gửi một tin tới một nhóm (tạo hoặc tiếp tục chiến dịch) / send an item to a group (create or resume).

    Mỗi người nhận được ghi lại trước khi gửi; chạy lại lệnh sẽ tiếp tục chiến
    dịch đang mở, không gửi trùng. / Every recipient is recorded before sending;
    running the command again resumes the open campaign, never sends twice.
    Trong giờ yên tĩnh (sms.quiet_hours) tin được giữ lại / quiet hours hold the messages.
    """
    from ..sms.backends import make_sender
    from ..sms.campaigns import open_campaign
    from ..sms.dispatcher import dispatch_campaign
    from ..timeutil import parse_local_datetime

    app = get_app()
    config = app.config
    tz_name = str(config.broadcaster.timezone)
    at = parse_local_datetime(at_text, tz_name) if at_text else None
    if not no_wait:
        make_sender(config)  # a bad backend or missing credentials fail before anything is written
    with app.session() as session:
        opening = open_campaign(session, item_id, group_name, at, config=config, again=again)
        campaign = opening.campaign
        campaign_id, segments, encoding, not_before = (campaign.id, campaign.segments, campaign.encoding,
                                                       campaign.not_before)
    price, currency = float(config.sms.price_per_segment), str(config.sms.currency)
    if opening.created:
        click.echo(f"Đã tạo chiến dịch {campaign_id}: {opening.recipients} người nhận × {segments} tin "
                   f"({encoding}), ước tính {money(opening.recipients * segments * price, currency)} / "
                   f"created campaign {campaign_id}")
    else:
        click.echo(f"Tiếp tục chiến dịch đang mở {campaign_id} ({opening.recipients} người nhận), không gửi "
                   f"trùng / resuming open campaign {campaign_id}: nobody gets it twice")
        if at is not None:
            click.echo("--at bỏ qua: chiến dịch đang mở giữ giờ hẹn của nó / --at ignored: the open campaign "
                       "keeps its own schedule")
    if not_before is not None:
        click.echo(f"Gửi từ / not before: {fmt_dt(not_before, tz_name)}")
    if no_wait:
        click.echo("Daemon sẽ gửi khi đến giờ / the daemon will send it when due")
        return
    result = dispatch_campaign(app, campaign_id, on_progress=_progress, on_wait=_waiting)
    _report(result, config, tz_name)


@sms_group.command("resume")
@click.option("--campaign", "campaign_id", type=int, help="Chỉ chiến dịch này / only this campaign.")
@click.option("--retry-uncertain", is_flag=True, help="Gửi lại cả tin 'chưa rõ' (có thể trùng) / also re-send "
                                                      "'uncertain' messages (a person may get it twice).")
def sms_resume(campaign_id: int | None, retry_uncertain: bool) -> None:
    """Gửi nốt các tin đang chờ (sau khi mất điện, tắt máy…) / finish pending messages after a stop.

    Tin 'chưa rõ' (đang gửi dở khi máy dừng, hoặc không nhận được trả lời)
    được hỏi lại Twilio: tin Twilio đã nhận thành 'đã gửi', tin Twilio không
    có được gửi một lần; tin chờ mạng được thử ngay /
    'uncertain' messages are looked up at Twilio: those it accepted become
    sent, those it does not have are sent once; messages waiting for the
    network are tried now.
    """
    from ..sms.dispatcher import resume

    app = get_app()
    config = app.config
    results = resume(app, campaign_id, retry_uncertain=retry_uncertain, on_progress=_progress, on_wait=_waiting,
                     on_resolved=_resolved)
    if not results:
        click.echo("Không có chiến dịch nào đang mở / no open campaign")
        return
    errors = []
    for result in results:
        try:
            _report(result, config, str(config.broadcaster.timezone))
        except click.ClickException as exc:
            errors.append(exc.message)
    if errors:
        raise click.ClickException(errors[0])


def _resolved(found) -> None:  # noqa: ANN001
    click.echo(f"Chiến dịch / campaign {found.campaign_id}: hỏi Twilio về tin chưa rõ / asked Twilio about "
               f"uncertain messages: {found.found} đã nhận/accepted, {found.requeued} không có, gửi lại/not "
               f"there, sent again, {found.unanswered} không trả lời được/no answer")
    if found.unanswered:
        click.echo(f"Twilio chưa trả lời ({found.error or '?'}): {found.unanswered} tin vẫn 'chưa rõ', chạy lại "
                   "'broadcaster sms resume' sau / still uncertain: run 'sms resume' again later")


def _campaign_rows(session) -> list[dict[str, Any]]:  # noqa: ANN001
    from sqlmodel import select

    from ..deliveries import waiting_for_network
    from ..models import Campaign, ContactGroup, ContentItem
    from ..sms.campaigns import campaign_counts, held_by_quiet_hours
    from ..timeutil import as_utc

    groups = {g.id: g.name for g in session.exec(select(ContactGroup)).all()}
    config = get_app().config
    data = []
    for campaign in session.exec(select(Campaign).order_by(Campaign.id)).all():
        item = session.get(ContentItem, campaign.item_id)
        data.append({"id": campaign.id, "item_id": campaign.item_id, "item": item.title if item else "",
                     "group": groups.get(campaign.group_id, ""), "status": campaign.status,
                     "encoding": campaign.encoding, "segments": campaign.segments,
                     "created_at": campaign.created_at, "not_before": as_utc(campaign.not_before),
                     "held_until": held_by_quiet_hours(config, item, utcnow()) if campaign.status == "open"
                     else None,
                     "schedule_id": campaign.schedule_id, "bulletin_id": campaign.bulletin_id,
                     "waiting_for_network": waiting_for_network(session, campaign.id)[1]
                     if campaign.status == "open" else None,
                     "counts": campaign_counts(session, campaign.id)})
    return data


@sms_group.command("status")
@click.option("--campaign", "campaign_id", type=int, help="Chi tiết một chiến dịch / one campaign in detail.")
@json_option
def sms_status(campaign_id: int | None, as_json: bool) -> None:
    """Tình hình các chiến dịch SMS / SMS campaigns and their counts."""
    from sqlmodel import select

    from ..deliveries import DeliveryStatus
    from ..models import Delivery
    from ..phones import mask_phone
    from ..sms.campaigns import PAID_STATUSES, find_campaign

    app = get_app()
    config = app.config
    tz_name = str(config.broadcaster.timezone)
    price, currency = float(config.sms.price_per_segment), str(config.sms.currency)
    with app.session() as session:
        if campaign_id is not None:
            find_campaign(session, campaign_id)
        campaigns = [c for c in _campaign_rows(session) if campaign_id is None or c["id"] == campaign_id]
        for c in campaigns:
            paid = sum(c["counts"].get(str(s), 0) for s in PAID_STATUSES)
            c["cost"] = round(paid * c["segments"] * price, 6)
            c["currency"] = currency
        problems = []
        if campaign_id is not None:
            bad = [DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED, DeliveryStatus.UNCERTAIN,
                   DeliveryStatus.SKIPPED, DeliveryStatus.SENDING, DeliveryStatus.CANCELLED]
            rows = session.exec(select(Delivery).where(Delivery.campaign_id == campaign_id,
                                                       Delivery.status.in_([str(s) for s in bad]))
                                .order_by(Delivery.id)).all()
            problems = [{"delivery": r.id, "recipient": mask_phone(r.recipient or ""), "status": r.status,
                         "attempts": r.attempts, "error_code": r.error_code, "error_message": r.error_message}
                        for r in rows]
    if as_json:
        if campaign_id is not None:
            echo_json({**campaigns[0], "problems": problems})
        else:
            echo_json(campaigns)
        return
    def status_text(c: dict[str, Any]) -> str:
        if c["status"] == "open" and c["not_before"] is not None and c["not_before"] > utcnow():
            return f"{c['status']} (từ/from {fmt_dt(c['not_before'], tz_name)})"
        if c["status"] == "open" and c["waiting_for_network"] is not None and c["counts"]["pending"]:
            return f"chờ mạng/waiting for network → {fmt_dt(c['waiting_for_network'], tz_name)}"
        if c["status"] == "open" and c["held_until"] is not None and c["counts"]["pending"]:
            return f"giữ/held (giờ yên tĩnh/quiet hours → {fmt_dt(c['held_until'], tz_name)})"
        return c["status"]

    echo_table(
        ["#", "Tin/item", "Nhóm/group", "Tạo/created", "Trạng thái/status",
         "Gửi/sent", "Lỗi/failed", "Chờ/pending", "Chưa rõ/uncertain", "Bỏ qua, hủy/skipped, cancelled", "Chi phí/cost"],
        ([c["id"], f"{c['item_id']} {c['item']}", c["group"], fmt_dt(c["created_at"], tz_name), status_text(c),
          sum(c["counts"].get(str(s), 0) for s in PAID_STATUSES), c["counts"]["failed"], c["counts"]["pending"],
          c["counts"]["uncertain"] + c["counts"]["sending"], c["counts"]["skipped"] + c["counts"]["cancelled"],
          money(c["cost"], currency)]
         for c in campaigns),
        title="Chiến dịch SMS / SMS campaigns", optional=[9, 8, 3, 7], clip=[1])
    if campaign_id is not None:
        counts = campaigns[0]["counts"]
        import textwrap

        from ..tables import terminal_width

        line = " · ".join(f"{k}: {v}" for k, v in counts.items() if v)
        click.echo(textwrap.fill(line, terminal_width()) if line else "")
        if problems:
            echo_table(["#", "Số/number", "Trạng thái/status", "Lần/attempts", "Mã lỗi/code", "Lỗi/error"],
                       ([p["delivery"], p["recipient"], p["status"], p["attempts"], p["error_code"] or "",
                         p["error_message"] or ""] for p in problems),
                       title="Tin cần xem lại / messages to look at")


@sms_group.command("cancel")
@click.argument("campaign_id", type=int)
def sms_cancel(campaign_id: int) -> None:
    """Hủy một chiến dịch: tin chưa gửi sẽ không bao giờ được gửi / stop a campaign: unsent messages are
    never sent (those already sent stay in the log)."""
    from ..deliveries import cancel_campaign

    result = cancel_campaign(get_app().ready_engine(), campaign_id)
    if result.already:
        click.echo(f"Chiến dịch {campaign_id} đã hủy từ trước / campaign {campaign_id} was already cancelled")
        return
    click.echo(f"Đã hủy chiến dịch {campaign_id}: {result.cancelled} tin sẽ không gửi / cancelled campaign "
               f"{campaign_id}: {result.cancelled} messages will not be sent")
    if result.in_flight:
        click.echo(f"  {result.in_flight} tin đang gửi dở sẽ hoàn tất / {result.in_flight} in flight will finish")


# --------------------------------------------------------------------------
# webhook
# --------------------------------------------------------------------------


@click.group("webhook", cls=BroadcasterGroup)
def webhook_group() -> None:
    """Nhận báo cáo trạng thái tin nhắn từ Twilio / receive Twilio status callbacks."""


@webhook_group.command("serve")
@click.option("--host", help="Địa chỉ nghe / listen address (mặc định/default: webhook.host).")
@click.option("--port", type=int, help="Cổng / port (mặc định/default: webhook.port).")
def webhook_serve(host: str | None, port: int | None) -> None:
    """Chạy máy chủ nhận trạng thái SMS (Ctrl-C để dừng) / serve SMS status callbacks (Ctrl-C stops)."""
    from ..sms.webhook import make_webhook_server

    app = get_app()
    server = make_webhook_server(app, host, port)
    bound_host, bound_port = server.server_address[:2]
    click.echo(f"Đang nghe / listening on http://{bound_host}:{bound_port} — chữ ký kiểm theo / signatures "
               f"checked against {app.config.sms.status_callback_url}")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        click.echo("Đã dừng / stopped")
    finally:
        server.server_close()


COMMANDS = [sms_group, webhook_group]
