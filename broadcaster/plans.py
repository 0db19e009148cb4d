"""Plans, their topics and targets: the TOML plan format and its import.

A plan file::

    [plan]
    code = "911/KH-UBND"
    title = "Kế hoạch thông tin, tuyên truyền CCHC tỉnh Ninh Thuận năm 2023"
    issuer = "UBND tỉnh Ninh Thuận"
    issued_on = 2023-03-15
    period = "2023"                  # or "2021-2030", or period_start/period_end
    audiences = ["người dân", "doanh nghiệp"]

    [[topics]]
    code = "TTHC"
    title = "Cải cách thủ tục hành chính"

      [[topics.targets]]
      channel = "loudspeaker"        # loudspeaker | sms | any
      metric = "broadcasts"          # broadcasts | airtime_minutes | sms_sent | sms_delivered | people_reached
      amount = 8
      period = "month"               # month | quarter | year | plan

    [[targets]]                      # targets for the whole plan
    channel = "sms"
    metric = "sms_sent"
    amount = 2000
    period = "plan"

See ``docs/plan-format.md`` for every field.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import false, func
from sqlmodel import Session, select

from .errors import AlreadyExistsError, InputError, NotFoundError, did_you_mean
from .models import (
    Campaign,
    Channel,
    ContentItem,
    Delivery,
    ItemStatus,
    Metric,
    Plan,
    Station,
    Target,
    TargetPeriod,
    Topic,
)
from .timeutil import parse_date, utcnow
from .validation import first_error, refuse_hidden

SMS_METRICS = {Metric.SMS_SENT, Metric.SMS_DELIVERED}
LOUDSPEAKER_METRICS = {Metric.BROADCASTS, Metric.AIRTIME_MINUTES}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TargetSpec(_Strict):
    channel: Literal["loudspeaker", "sms", "any"] = "any"
    metric: Literal["broadcasts", "airtime_minutes", "sms_sent", "sms_delivered", "people_reached"]
    amount: float = Field(gt=0, le=1e9, allow_inf_nan=False)
    period: Literal["month", "quarter", "year", "plan"] = "year"
    station: str | None = None
    note: str = ""

    @model_validator(mode="after")
    def _metric_fits_channel(self) -> TargetSpec:
        if self.metric in SMS_METRICS and self.channel == Channel.LOUDSPEAKER:
            raise ValueError(f"chỉ tiêu '{self.metric}' không dùng cho loa / metric is SMS-only")
        if self.metric in LOUDSPEAKER_METRICS and self.channel == Channel.SMS:
            raise ValueError(f"chỉ tiêu '{self.metric}' không dùng cho SMS / metric is loudspeaker-only")
        return self


class TopicSpec(_Strict):
    code: str = Field(min_length=1, max_length=40)
    title: str = Field(min_length=1)
    description: str = ""
    targets: list[TargetSpec] = []

    @field_validator("code")
    @classmethod
    def _visible_code(cls, value: str) -> str:
        return refuse_hidden(value, "mã/code")


class PlanHeader(_Strict):
    code: str = Field(min_length=1, max_length=60)
    title: str = Field(min_length=1)
    issuer: str = ""
    issued_on: date | None = None
    period: str | None = None
    period_start: date | None = None
    period_end: date | None = None
    audiences: list[str] = []
    source: str = ""
    notes: str = ""
    illustrative_targets: bool = False

    @field_validator("code")
    @classmethod
    def _visible_code(cls, value: str) -> str:
        return refuse_hidden(value, "mã/code")

    @field_validator("issued_on", "period_start", "period_end", mode="before")
    @classmethod
    def _dates(cls, value: object) -> object:
        return parse_date(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _resolve_period(self) -> PlanHeader:
        if self.period:
            if self.period_start or self.period_end:
                raise ValueError("dùng 'period' hoặc 'period_start/period_end', không cả hai / not both")
            self.period_start, self.period_end = parse_period(self.period)
        if not self.period_start or not self.period_end:
            raise ValueError("thiếu thời gian của kế hoạch / plan needs 'period' or 'period_start' and 'period_end'")
        if self.period_end < self.period_start:
            raise ValueError("'period_end' trước 'period_start' / period ends before it starts")
        return self


class PlanFile(_Strict):
    plan: PlanHeader
    topics: list[TopicSpec] = Field(min_length=1)
    targets: list[TargetSpec] = []

    @model_validator(mode="after")
    def _unique_topic_codes(self) -> PlanFile:
        seen: set[str] = set()
        for topic in self.topics:
            if topic.code in seen:
                raise ValueError(f"mã chủ đề trùng / duplicate topic code '{topic.code}'")
            seen.add(topic.code)
        return self


def parse_period(text: str) -> tuple[date, date]:
    """'2023' -> the year; '2021-2030' -> the years; '2023-03-15..2023-12-31' -> those dates."""
    text = str(text).strip()
    try:
        if ".." in text:
            start, end = text.split("..", 1)
            return parse_date(start), parse_date(end)
        if text.isdigit() and len(text) == 4:
            year = int(text)
            return date(year, 1, 1), date(year, 12, 31)
        first, _, last = text.partition("-")
        if first.isdigit() and last.isdigit() and len(first) == len(last) == 4:
            return date(int(first), 1, 1), date(int(last), 12, 31)
    except ValueError:
        pass
    raise ValueError(f"thời gian không hợp lệ / bad period {text!r} (2023, 2021-2030 hoặc/or YYYY-MM-DD..YYYY-MM-DD)")


def read_plan_file(path: Path) -> PlanFile:
    source = str(path)
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError("không tìm thấy tệp / file not found", source=source) from exc
    except UnicodeDecodeError as exc:
        raise InputError("tệp không phải UTF-8 / file is not UTF-8", source=source) from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"TOML không hợp lệ / invalid TOML: {exc}", source=source) from exc
    try:
        return PlanFile.model_validate(raw)
    except ValidationError as exc:
        raise first_error(exc, source) from exc


@dataclass
class ImportResult:
    plan: Plan
    topics: int
    targets: int
    replaced: bool


def import_plan(session: Session, spec: PlanFile, *, source: str, replace: bool = False) -> ImportResult:
    """Write a validated plan in the caller's transaction (all-or-nothing)."""
    stations = {s.code: s.id for s in session.exec(select(Station)).all()}
    for where, target in _all_targets(spec):
        if target.station and target.station not in stations:
            raise InputError(f"không có đài '{target.station}' / unknown station"
                             f"{did_you_mean(target.station, stations)} (thêm bằng/add with "
                             "'broadcaster station add')", source=source, field=f"{where}.station")
    header = spec.plan
    plan = session.exec(select(Plan).where(Plan.code == header.code)).first()
    replaced = plan is not None
    if plan is not None and not replace:
        raise AlreadyExistsError(
            f"{source}: kế hoạch {header.code} đã có; dùng --replace để thay / "
            f"plan {header.code} already exists; use --replace to replace it"
        )
    fields = dict(
        title=header.title, issuer=header.issuer, issued_on=header.issued_on,
        period_start=header.period_start, period_end=header.period_end,
        audiences=header.audiences, source=header.source, notes=header.notes,
    )
    if plan is None:
        plan = Plan(code=header.code, **fields)
        session.add(plan)
        session.flush()
    else:
        for key, value in fields.items():
            setattr(plan, key, value)
        for target in session.exec(select(Target).where(Target.plan_id == plan.id)).all():
            session.delete(target)
    topics = _upsert_topics(session, plan, spec.topics, source)
    count = 0
    for topic_spec in spec.topics:
        for target in topic_spec.targets:
            session.add(_target_row(plan, topics[topic_spec.code], target, stations, header.illustrative_targets))
            count += 1
    for target in spec.targets:
        session.add(_target_row(plan, None, target, stations, header.illustrative_targets))
        count += 1
    session.flush()
    return ImportResult(plan=plan, topics=len(spec.topics), targets=count, replaced=replaced)


def _all_targets(spec: PlanFile):
    for i, topic in enumerate(spec.topics, 1):
        for j, target in enumerate(topic.targets, 1):
            yield f"topics[{i}].targets[{j}]", target
    for j, target in enumerate(spec.targets, 1):
        yield f"targets[{j}]", target


def _upsert_topics(session: Session, plan: Plan, specs: list[TopicSpec], source: str) -> dict[str, Topic]:
    existing = {t.code: t for t in session.exec(select(Topic).where(Topic.plan_id == plan.id)).all()}
    wanted = {spec.code for spec in specs}
    for code, topic in existing.items():
        if code in wanted:
            continue
        in_use = session.exec(select(ContentItem.id).where(ContentItem.topic_id == topic.id)).first() or \
            session.exec(select(Delivery.id).where(Delivery.topic_id == topic.id)).first()
        if in_use:
            raise InputError(
                f"chủ đề '{code}' đang có tin bài hoặc nhật ký nên không bỏ được / "
                f"topic '{code}' has content or deliveries and cannot be dropped",
                source=source, field="topics",
            )
        session.delete(topic)
    topics: dict[str, Topic] = {}
    for position, spec in enumerate(specs, 1):
        topic = existing.get(spec.code) or Topic(plan_id=plan.id, code=spec.code, title=spec.title)
        topic.title, topic.description, topic.position = spec.title, spec.description, position
        session.add(topic)
        topics[spec.code] = topic
    session.flush()
    return topics


def _target_row(plan: Plan, topic: Topic | None, spec: TargetSpec, stations: dict[str, int],
                illustrative: bool) -> Target:
    return Target(
        plan_id=plan.id, topic_id=topic.id if topic else None, channel=spec.channel, metric=spec.metric,
        amount=spec.amount, period=spec.period, station_id=stations.get(spec.station) if spec.station else None,
        illustrative=illustrative, note=spec.note,
    )


def get_plan(session: Session, code: str) -> Plan:
    plan = session.exec(select(Plan).where(Plan.code == code)).first()
    if plan is None:
        known = session.exec(select(Plan.code)).all()
        raise NotFoundError(f"không có kế hoạch '{code}' / no plan with code '{code}'{did_you_mean(code, known)}")
    return plan


def list_plans(session: Session) -> list[Plan]:
    return list(session.exec(select(Plan).order_by(Plan.period_start, Plan.code)).all())


def plan_topics(session: Session, plan: Plan) -> list[Topic]:
    return list(session.exec(select(Topic).where(Topic.plan_id == plan.id).order_by(Topic.position)).all())


def plan_targets(session: Session, plan: Plan) -> list[Target]:
    return list(session.exec(select(Target).where(Target.plan_id == plan.id).order_by(Target.id)).all())


def find_topic(session: Session, code: str, plan_code: str | None = None) -> Topic:
    """A topic by code; ``PLAN:CODE`` or ``--plan`` disambiguates when plans share codes."""
    if ":" in code and plan_code is None:
        plan_code, code = code.rsplit(":", 1)
    query = select(Topic).where(Topic.code == code)
    if plan_code:
        query = query.join(Plan).where(Plan.code == plan_code)
    found = session.exec(query).all()
    if not found:
        known = session.exec(select(Topic.code)).all()
        raise NotFoundError(f"không có chủ đề '{code}' / unknown topic '{code}'{did_you_mean(code, known)}")
    if len(found) > 1:
        raise InputError(
            f"mã chủ đề '{code}' có trong nhiều kế hoạch, ghi 'MÃ_KH:{code}' / "
            f"topic code '{code}' is in several plans: write 'PLAN_CODE:{code}'"
        )
    return found[0]


METRIC_LABELS = {
    Metric.BROADCASTS: ("lượt phát", "broadcasts"),
    Metric.AIRTIME_MINUTES: ("phút phát sóng", "airtime minutes"),
    Metric.SMS_SENT: ("tin nhắn đã gửi", "SMS sent"),
    Metric.SMS_DELIVERED: ("tin nhắn đã đến", "SMS delivered"),
    Metric.PEOPLE_REACHED: ("người được tiếp cận", "people reached"),
}
PERIOD_LABELS = {
    TargetPeriod.MONTH: ("mỗi tháng", "per month"),
    TargetPeriod.QUARTER: ("mỗi quý", "per quarter"),
    TargetPeriod.YEAR: ("mỗi năm", "per year"),
    TargetPeriod.PLAN: ("cả kế hoạch", "whole plan"),
}


def select_stations(session: Session) -> list[Station]:
    return list(session.exec(select(Station)).all())


@dataclass
class PlanRemoval:
    code: str
    topics: int
    targets: int
    items_deleted: int
    items_kept: int  # aired or sent: kept, retired, so the delivery log still names them
    deliveries: int


def plan_references(session: Session, plan: Plan) -> tuple[list[int], int]:
    """(ids of content items in the plan's topics, deliveries logged against the plan)."""
    topic_ids = [t.id for t in plan_topics(session, plan)]
    items = list(session.exec(select(ContentItem.id).where(ContentItem.topic_id.in_(topic_ids))).all()) \
        if topic_ids else []
    deliveries = session.exec(select(func.count()).select_from(Delivery).where(
        (Delivery.plan_id == plan.id) | (Delivery.topic_id.in_(topic_ids) if topic_ids else false()))).one()
    return items, deliveries


def remove_plan(session: Session, code: str, *, force: bool = False) -> PlanRemoval:
    """Delete a plan, its topics and targets in the caller's transaction.

    Refused while content or deliveries refer to it, unless ``force``: then its never-used items
    are deleted too, and items already aired or sent are retired and kept, their title prefixed
    with ``[PLAN:TOPIC]``, because the delivery log shows an item's title once the plan is gone.
    """
    plan = get_plan(session, code)
    item_ids, deliveries = plan_references(session, plan)
    if (item_ids or deliveries) and not force:
        raise InputError(
            f"kế hoạch {code} còn {len(item_ids)} tin bài và {deliveries} lượt trong nhật ký; dùng --force để "
            f"xóa cả tin bài (nhật ký vẫn giữ) / plan {code} still has {len(item_ids)} content items and "
            f"{deliveries} logged deliveries: use --force to remove its content too (the log is kept)")
    topics = {t.id: t for t in plan_topics(session, plan)}
    targets = len(plan_targets(session, plan))
    deleted = kept = 0
    for item in session.exec(select(ContentItem).where(ContentItem.id.in_(item_ids))).all() if item_ids else []:
        used = session.exec(select(Delivery.id).where(Delivery.item_id == item.id)).first() or \
            session.exec(select(Campaign.id).where(Campaign.item_id == item.id)).first()
        if used:
            item.title = f"[{plan.code}:{topics[item.topic_id].code}] {item.title}"
            item.status = ItemStatus.RETIRED.value
            item.updated_at = utcnow()
            session.add(item)
            kept += 1
        else:
            session.delete(item)
            deleted += 1
    session.flush()
    session.delete(plan)  # topics and targets cascade; deliveries keep their rows (plan/topic set to NULL)
    session.flush()
    return PlanRemoval(plan.code, len(topics), targets, deleted, kept, deliveries)


def period_warning(plan: Plan, today: date) -> str | None:
    """One line when ``today`` (station date) is outside the plan's period: its deliveries will not count."""
    start, end = plan.period_start.strftime("%d/%m/%Y"), plan.period_end.strftime("%d/%m/%Y")
    if today > plan.period_end:
        return (f"Cảnh báo: kế hoạch {plan.code} đã hết hạn ({start}–{end}); phát/gửi hôm nay không được tính "
                f"vào báo cáo của nó / warning: plan {plan.code} ended on {end}; deliveries from today do not count "
                "towards it")
    if today < plan.period_start:
        return (f"Cảnh báo: kế hoạch {plan.code} chưa bắt đầu (từ {start}); phát/gửi trước ngày đó không được tính "
                f"/ warning: plan {plan.code} starts on {start}; deliveries before then do not count towards it")
    return None


def plans_of_topics(session: Session, topic_ids: list[int]) -> list[Plan]:
    if not topic_ids:
        return []
    # IN, not JOIN + DISTINCT: PostgreSQL cannot compare the JSON audiences column for DISTINCT.
    plan_ids = select(Topic.plan_id).where(Topic.id.in_(topic_ids))
    return list(session.exec(select(Plan).where(Plan.id.in_(plan_ids)).order_by(Plan.id)).all())
