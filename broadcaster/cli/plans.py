"""``plan``: import, list and show communication plans."""

from __future__ import annotations

from pathlib import Path

import click

from .. import plans
from ..models import Metric, TargetPeriod
from ..timeutil import local, utcnow
from .common import BroadcasterGroup, echo_json, echo_table, echo_wrapped, get_app, json_option


@click.group("plan", cls=BroadcasterGroup)
def plan_group() -> None:
    """Kế hoạch tuyên truyền / communication plans."""


@plan_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Thay kế hoạch cùng mã / replace a plan with the same code.")
def plan_import(file: Path, replace: bool) -> None:
    """Nhập kế hoạch từ tệp TOML (tất cả hoặc không) / import a plan file, all-or-nothing."""
    spec = plans.read_plan_file(file)
    app = get_app()
    with app.session() as session:
        result = plans.import_plan(session, spec, source=str(file), replace=replace)
        code = result.plan.code
        warning = plans.period_warning(result.plan, local(utcnow(), app.config.broadcaster.timezone).date())
    verb = "Đã thay / replaced" if result.replaced else "Đã nhập / imported"
    click.echo(f"{verb}: {code} — {result.topics} chủ đề/topics, {result.targets} chỉ tiêu/targets")
    if warning:
        click.echo(warning, err=True)


@plan_group.command("list")
@json_option
def plan_list(as_json: bool) -> None:
    """Liệt kê kế hoạch / list plans."""
    with get_app().session() as session:
        data = [
            {"code": p.code, "title": p.title, "issuer": p.issuer, "issued_on": p.issued_on,
             "period_start": p.period_start, "period_end": p.period_end,
             "topics": len(plans.plan_topics(session, p)), "targets": len(plans.plan_targets(session, p))}
            for p in plans.list_plans(session)
        ]
    if as_json:
        echo_json(data)
        return
    echo_table(["Mã/code", "Tên/title", "Cơ quan/issuer", "Thời gian/period", "Chủ đề/topics", "Chỉ tiêu/targets"],
               ([d["code"], d["title"], d["issuer"], f"{d['period_start']} → {d['period_end']}", d["topics"],
                 d["targets"]] for d in data),
               title="Kế hoạch / plans")


def _target_text(target, lang_index: int = 0) -> str:
    metric = plans.METRIC_LABELS[Metric(target.metric)][lang_index]
    period = plans.PERIOD_LABELS[TargetPeriod(target.period)][lang_index]
    amount = f"{target.amount:g}"
    return f"{amount} {metric} {period}"


@plan_group.command("show")
@click.argument("code")
@json_option
def plan_show(code: str, as_json: bool) -> None:
    """Chủ đề và chỉ tiêu của kế hoạch / a plan's topics and targets."""
    with get_app().session() as session:
        plan = plans.get_plan(session, code)
        topics = plans.plan_topics(session, plan)
        targets = plans.plan_targets(session, plan)
        stations = {s.id: s.code for s in plans.select_stations(session)}
    by_topic = {t.id: t for t in topics}
    target_rows = [
        {"topic": by_topic[t.topic_id].code if t.topic_id else None, "channel": t.channel, "metric": t.metric,
         "amount": t.amount, "period": t.period, "station": stations.get(t.station_id),
         "illustrative": t.illustrative, "note": t.note}
        for t in targets
    ]
    if as_json:
        echo_json({
            "code": plan.code, "title": plan.title, "issuer": plan.issuer, "issued_on": plan.issued_on,
            "period_start": plan.period_start, "period_end": plan.period_end, "audiences": plan.audiences,
            "source": plan.source, "notes": plan.notes,
            "topics": [{"code": t.code, "title": t.title, "description": t.description} for t in topics],
            "targets": target_rows,
        })
        return
    echo_wrapped(f"{plan.code}: {plan.title}")
    if plan.issuer or plan.issued_on:
        echo_wrapped(f"Cơ quan ban hành / issuer: {plan.issuer} {plan.issued_on or ''}".rstrip())
    echo_wrapped(f"Thời gian / period: {plan.period_start} → {plan.period_end}")
    if plan.audiences:
        echo_wrapped(f"Đối tượng / audiences: {'; '.join(plan.audiences)}")
    if plan.notes:
        echo_wrapped(f"Ghi chú / notes: {plan.notes}")
    echo_table(["Mã/code", "Chủ đề/topic", "Chỉ tiêu/targets"],
               ([t.code, t.title, "; ".join(f"{_target_text(x)} ({x.channel})" for x in targets
                                            if x.topic_id == t.id)] for t in topics),
               title="Chủ đề / topics")
    whole = [t for t in targets if t.topic_id is None]
    if whole:
        echo_table(["Kênh/channel", "Chỉ tiêu/target", "Đài/station"],
                   ([t.channel, _target_text(t), stations.get(t.station_id, "")] for t in whole),
                   title="Chỉ tiêu chung / whole-plan targets")
    if any(t.illustrative for t in targets):
        echo_wrapped("* Chỉ tiêu minh họa, văn bản gốc không nêu số / illustrative targets: the source gives no "
                     "number.")


@plan_group.command("remove")
@click.argument("code")
@click.option("--force", is_flag=True, help="Xóa cả tin bài của kế hoạch; tin đã phát được giữ (đã ngừng) để "
              "nhật ký vẫn đọc được / also remove its content; items already aired are kept, retired, so the "
              "log stays readable.")
def plan_remove(code: str, force: bool) -> None:
    """Xóa một kế hoạch (vd. nhập nhầm) / remove a plan (e.g. a wrong import)."""
    with get_app().session() as session:
        removed = plans.remove_plan(session, code, force=force)
    click.echo(f"Đã xóa kế hoạch / plan removed: {removed.code} — {removed.topics} chủ đề/topics, "
               f"{removed.targets} chỉ tiêu/targets")
    if removed.items_deleted or removed.items_kept:
        click.echo(f"  tin bài / content: {removed.items_deleted} đã xóa/removed, {removed.items_kept} giữ lại "
                   "(đã ngừng, vì đã phát) / kept (retired, already aired or sent)")
    if removed.deliveries:
        click.echo(f"  nhật ký / delivery log: giữ nguyên {removed.deliveries} dòng / {removed.deliveries} rows kept")


COMMANDS = [plan_group]
