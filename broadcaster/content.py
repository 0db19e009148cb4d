"""Content items: what bulletins read and SMS campaigns send.

An item has a title, a topic of a plan, channels, a priority and a validity
window, and says its message per language: a text (Vietnamese is spoken by
text-to-speech) and/or an operator's recording (copied into the data dir's
``recordings/`` as ``<item id>_<lang><suffix>``).

A content TOML file::

    [[items]]
    title = "Dịch vụ công trực tuyến"
    topic = "CDS"                     # or "911/KH-UBND:CDS"
    text = "Từ ngày 1/7, người dân có thể nộp hồ sơ trực tuyến…"
    texts = { th = "…" }             # more languages (optional)
    audio = { th = "rec/cds_th.mp3" } # recordings, relative to this file
    channels = ["loudspeaker", "sms"] # default: both
    priority = "normal"               # normal | priority | emergency
    repeat = 1                        # default 2 for emergency
    valid_from = "2023-07-01"         # station time; a date or "YYYY-MM-DD HH:MM"
    valid_until = "2023-07-31"        # a date means the end of that day
    sms_text = "…"                    # a shorter text for SMS (optional)
    status = "approved"               # draft (default) | approved

A CSV has the header ``title,topic,text,channels,priority,repeat,valid_from,
valid_until,status,sms_text`` (``plan`` and ``lang`` may be added;
channels are separated by ``;``).
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlmodel import Session, select

from .errors import BroadcasterError, InputError, NotFoundError
from .fileutil import copy_atomic
from .models import Channel, ContentItem, ContentText, ItemStatus, Plan, Priority, Topic
from .plans import find_topic
from .sms.encoding import MAX_BODY_CHARS
from .timeutil import DEFAULT_TIMEZONE, as_utc, parse_date, parse_local_datetime, utcnow, zone
from .validation import csv_lines, field_path, main_error

ITEM_CHANNELS = (Channel.LOUDSPEAKER.value, Channel.SMS.value)
LANG_RE = re.compile(r"^[a-z]{2,8}(-[a-z0-9]{1,8})*$")
DEFAULT_EMERGENCY_REPEAT = 2
MAX_REPEAT = 10
PRIORITY_ALIASES = {"thong thuong": "normal", "binh thuong": "normal", "uu tien": "priority",
                    "khan cap": "emergency", "khan": "emergency"}
CHANNEL_ALIASES = {"loa": "loudspeaker", "truyen thanh": "loudspeaker", "tin nhan": "sms"}
STATUS_ALIASES = {"nhap": "draft", "ban nhap": "draft", "da duyet": "approved", "duyet": "approved"}
CSV_COLUMNS = ("title", "topic", "plan", "text", "lang", "channels", "priority", "repeat", "valid_from",
               "valid_until", "status", "sms_text")


def nfc(text: str | None) -> str:
    return unicodedata.normalize("NFC", text or "").strip()


def _plain(text: str) -> str:
    from .sms.encoding import strip_diacritics

    return " ".join(strip_diacritics(nfc(text)).lower().split())


def _lang(value: str) -> str:
    code = str(value).strip().lower()
    if not LANG_RE.match(code):
        raise ValueError(f"mã ngôn ngữ không hợp lệ / bad language code {value!r} (vd/e.g. vi, th, hmn)")
    return code


def parse_when(value: Any, tz_name: str, *, end_of_day: bool = False) -> datetime | None:
    """A validity bound in station time -> aware UTC.

    Accepts 2023-07-01, 1/7/2023, "2023-07-01 06:00", an ISO string with an offset,
    or TOML dates and date-times. A bare date is the start of that day, or with
    ``end_of_day`` its last second.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    tz = zone(tz_name)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=tz)
        return as_utc(moment)
    if isinstance(value, date):
        return as_utc(datetime.combine(value, time(23, 59, 59) if end_of_day else time.min, tzinfo=tz))
    if not isinstance(value, str):
        raise ValueError(f"thời điểm không hợp lệ / bad date-time {value!r} (dạng/format YYYY-MM-DD HH:MM)")
    text = " ".join(value.split())
    day, _, clock = text.partition(" ")
    if "/" in day:  # 1/7/2023 or "1/7/2023 06:00"
        parsed = parse_date(day)
        if not clock:
            return parse_when(parsed, tz_name, end_of_day=end_of_day)
        text = f"{parsed.isoformat()} {clock}"
    elif len(text) <= 10 and "T" not in text and ":" not in text:
        return parse_when(parse_date(text), tz_name, end_of_day=end_of_day)
    return as_utc(parse_local_datetime(text, tz_name))


def validation_error(exc: ValidationError, source: str | None, *, line: int | None = None,
                     cli: bool = False) -> InputError:
    """The first error as one line naming the file, line and field (or the CLI option)."""
    error, message = main_error(exc)
    path = field_path(tuple(error["loc"]))
    if cli and path:
        path = f"--{path.split('.')[0].split('[')[0].replace('_', '-')}"
    return InputError(message, source=source or None, line=line, field=path or None)


class ItemSpec(BaseModel):
    """One content item as an operator writes it (CLI options, a TOML table or a CSV row)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=200)
    # Only an emergency item (a storm warning) may stand outside the plan's topics.
    topic: str | None = Field(default=None, min_length=1)
    plan: str | None = None
    text: str | None = None
    lang: str = "vi"
    texts: dict[str, str] = {}
    audio: dict[str, str] = {}  # lang -> file (relative to the file it came from)
    channels: list[Literal["loudspeaker", "sms"]] | None = None
    priority: Literal["normal", "priority", "emergency"] = "normal"
    repeat: int | None = Field(default=None, ge=1, le=MAX_REPEAT)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    sms_text: str | None = None
    status: Literal["draft", "approved"] = "draft"

    @field_validator("title", "topic", "plan", mode="before")
    @classmethod
    def _nfc_str(cls, value: Any) -> Any:
        return nfc(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _topic_unless_emergency(self) -> ItemSpec:
        if self.topic is None and self.priority != "emergency":
            raise ValueError("thiếu chủ đề (chỉ tin khẩn cấp được để trống) / topic missing "
                             "(only emergency items may have none)")
        return self

    @field_validator("text", "sms_text", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if value is None or not isinstance(value, str):
            return value
        value = nfc(value)
        if not value:
            raise ValueError("nội dung trống / text is empty")
        return value

    @field_validator("lang", mode="before")
    @classmethod
    def _lang_code(cls, value: Any) -> Any:
        return _lang(value) if isinstance(value, str) else value

    @field_validator("texts", "audio", mode="before")
    @classmethod
    def _per_lang(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = {}
        for key, text in value.items():
            if not isinstance(text, str):
                raise ValueError(f"'{key}': cần chuỗi / must be a string")
            text = nfc(text)
            if not text:
                raise ValueError(f"'{key}': nội dung trống / empty")
            out[_lang(key)] = text
        return out

    @field_validator("channels", mode="before")
    @classmethod
    def _channels(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in re.split(r"[;,]", value) if part.strip()]
        if isinstance(value, list):
            value = [CHANNEL_ALIASES.get(_plain(v), _plain(v)) if isinstance(v, str) else v for v in value]
            value = list(dict.fromkeys(value))
            if not value:
                raise ValueError("cần ít nhất một kênh / at least one channel (loudspeaker, sms)")
        return value

    @field_validator("priority", mode="before")
    @classmethod
    def _priority(cls, value: Any) -> Any:
        return PRIORITY_ALIASES.get(_plain(value), _plain(value)) if isinstance(value, str) else value

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        return STATUS_ALIASES.get(_plain(value), _plain(value)) if isinstance(value, str) else value

    @field_validator("valid_from", "valid_until", mode="before")
    @classmethod
    def _when(cls, value: Any, info: ValidationInfo) -> Any:
        tz = (info.context or {}).get("tz", DEFAULT_TIMEZONE)
        return parse_when(value, tz, end_of_day=info.field_name == "valid_until")

    @model_validator(mode="after")
    def _consistent(self) -> ItemSpec:
        if self.text is not None and self.lang in self.texts and self.texts[self.lang] != self.text:
            raise ValueError(f"hai nội dung cho ngôn ngữ '{self.lang}' / two texts for language '{self.lang}'")
        if not self.all_texts() and not self.audio:
            raise ValueError("tin cần nội dung chữ hoặc tệp ghi âm / an item needs a text or a recording")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("'valid_until' phải sau 'valid_from' / valid_until must be after valid_from")
        channels = self.channels or list(ITEM_CHANNELS)
        if Channel.SMS in channels:
            body = self.sms_text or self.all_texts().get("vi")
            if not body:
                raise ValueError("kênh SMS cần nội dung tiếng Việt hoặc sms_text / the sms channel needs a "
                                 "Vietnamese text or sms_text (hoặc chỉ kênh loa / or the loudspeaker channel only)")
            if len(body) > MAX_BODY_CHARS:
                raise ValueError(f"tin SMS quá dài ({len(body)} ký tự, tối đa {MAX_BODY_CHARS}); thêm sms_text "
                                 f"ngắn hơn / SMS body too long ({len(body)} > {MAX_BODY_CHARS}): add a "
                                 "shorter sms_text")
        if Channel.LOUDSPEAKER in channels and not self.all_texts().get("vi") and not self.audio:
            raise ValueError("loa cần nội dung tiếng Việt hoặc tệp ghi âm / the loudspeaker channel needs a "
                             "Vietnamese text or a recording")
        return self

    def all_texts(self) -> dict[str, str]:
        texts = dict(self.texts)
        if self.text is not None:
            texts[self.lang] = self.text
        return texts


class ContentFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[ItemSpec] = Field(min_length=1)


# --------------------------------------------------------------------------
# Checking and writing
# --------------------------------------------------------------------------

class StagedFiles:
    """Files written during a transaction, removed again if it fails.

    Enter it *outside* the session so a failed commit is seen::

        with StagedFiles() as staged, app.session() as session:
            add_item(session, ..., staged=staged)
    """

    def __init__(self) -> None:
        self.paths: list[Path] = []

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            for path in self.paths:
                path.unlink(missing_ok=True)
        return False


def probe_duration(path: Path) -> float:
    """Seconds of audio in ``path``; ValueError if it is not readable audio."""
    try:
        done = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "format=duration:stream=codec_type",
             "-of", "json", str(path)],
            capture_output=True, text=True, timeout=60, check=False,
        )
    except FileNotFoundError as exc:
        raise BroadcasterError("cần cài ffprobe (gói ffmpeg) để kiểm tra tệp ghi âm / ffprobe (ffmpeg) is "
                               "needed to check recordings") from exc
    except subprocess.TimeoutExpired as exc:
        raise ValueError("không đọc được tệp âm thanh (quá thời gian) / audio file could not be read "
                         "(timed out)") from exc
    try:
        info = json.loads(done.stdout or "{}")
        duration = float(info.get("format", {}).get("duration", "nan"))
    except (ValueError, TypeError):
        duration = float("nan")
    if done.returncode != 0 or not info.get("streams") or not duration > 0:
        raise ValueError("không phải tệp âm thanh đọc được / not a readable audio file")
    return duration


#: A recording quieter than this everywhere is silence (a muted microphone, an empty file).
SILENCE_MAX_DB = -60.0
MIN_RECORDING_S = 0.5
_VOLUME_RE = re.compile(r"(n_samples|max_volume): (-?inf|[-\d.]+)")


def check_recording(path: Path) -> float:
    """Seconds of a recording fit to air; ValueError if it is unreadable, truncated, too short or silent.

    The container's duration (ffprobe) is compared with what ffmpeg really
    decodes, and ffmpeg's volumedetect gives the loudest sample.
    """
    duration = probe_duration(path)
    try:
        stream = json.loads(subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=sample_rate,channels",
             "-of", "json", str(path)], capture_output=True, text=True, timeout=60, check=False).stdout or "{}")
        rate = int(stream["streams"][0]["sample_rate"]) * int(stream["streams"][0]["channels"])
        done = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-map", "0:a:0",
                               "-af", "volumedetect", "-f", "null", "-"],
                              capture_output=True, text=True, timeout=300, check=False)
    except (subprocess.TimeoutExpired, KeyError, IndexError, ValueError, TypeError) as exc:
        raise ValueError("không đọc được tệp âm thanh / audio file could not be read") from exc
    found = dict(_VOLUME_RE.findall(done.stderr))
    if done.returncode != 0 or "n_samples" not in found or rate <= 0:
        raise ValueError("không giải mã được tệp âm thanh / the audio could not be decoded")
    decoded = int(found["n_samples"]) / rate
    if decoded < duration * 0.9 and duration - decoded > 0.25:
        raise ValueError(f"tệp ghi âm bị cắt cụt ({decoded:.1f} s trên {duration:.1f} s) / the recording is "
                         f"truncated ({decoded:.1f} s of {duration:.1f} s)")
    if decoded < MIN_RECORDING_S:
        raise ValueError(f"tệp ghi âm quá ngắn ({decoded:.2f} s) / the recording is too short")
    loudest = float(found.get("max_volume", "-inf"))
    if loudest <= SILENCE_MAX_DB:
        raise ValueError(f"tệp ghi âm im lặng (to nhất {loudest:.0f} dB) / the recording is silent "
                         f"(loudest {loudest:.0f} dB)")
    return decoded


@dataclass
class PreparedItem:
    spec: ItemSpec
    topic: Topic | None
    audio: dict[str, Path] = field(default_factory=dict)  # lang -> source file, checked


def prepare_item(session: Session, spec: ItemSpec, *, base_dir: Path | None = None, source: str | None = None,
                 line: int | None = None, prefix: str = "", cli: bool = False,
                 topics: dict[tuple[str, str | None], Topic] | None = None) -> PreparedItem:
    """Resolve the topic and check the recordings; errors name the file, line or field.

    ``topics``: a cache of topics already found, for a file of many items."""
    def where(name: str) -> str:
        return f"--{name.replace('_', '-')}" if cli else f"{prefix}.{name}" if prefix else name

    try:
        topic = None
        if spec.topic:
            key = (spec.topic, spec.plan)
            topic = topics.get(key) if topics is not None else None
            if topic is None:
                topic = find_topic(session, spec.topic, spec.plan)
                if topics is not None:
                    topics[key] = topic
    except BroadcasterError as exc:
        raise InputError(str(exc), source=source, line=line, field=where("topic")) from exc
    audio: dict[str, Path] = {}
    for lang, name in spec.audio.items():
        path = Path(name).expanduser()
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        label = f"{where('audio')}" if cli else f"{where('audio')}.{lang}"
        if not path.is_file():
            raise InputError(f"không tìm thấy tệp âm thanh / audio file not found: {path}", source=source,
                             line=line, field=label)
        try:
            check_recording(path)
        except ValueError as exc:
            raise InputError(f"{exc}: {path}", source=source, line=line, field=label) from exc
        audio[lang] = path
    return PreparedItem(spec=spec, topic=topic, audio=audio)


def default_repeat(priority: str, emergency_repeat: int = DEFAULT_EMERGENCY_REPEAT) -> int:
    return max(1, emergency_repeat) if priority == Priority.EMERGENCY else 1


def write_item(session: Session, prepared: PreparedItem, *, recordings_dir: Path, staged: StagedFiles,
               emergency_repeat: int = DEFAULT_EMERGENCY_REPEAT, flush: bool = True,
               by: str | None = None) -> ContentItem:
    """Insert one checked item in the caller's transaction; recordings are copied after the flush.

    An item written approved records ``by`` as its approver."""
    spec = prepared.spec
    approved = spec.status == ItemStatus.APPROVED
    item = ContentItem(
        approved_by=by if approved else None, approved_at=utcnow() if approved else None,
        title=spec.title, topic_id=prepared.topic.id if prepared.topic else None,
        channels=list(spec.channels or ITEM_CHANNELS),
        priority=spec.priority,
        repeat=spec.repeat if spec.repeat is not None else default_repeat(spec.priority, emergency_repeat),
        valid_from=spec.valid_from, valid_until=spec.valid_until, status=spec.status, sms_text=spec.sms_text,
    )
    session.add(item)
    session.flush()
    texts = spec.all_texts()
    for lang in dict.fromkeys([*texts, *prepared.audio]):
        row = ContentText(item_id=item.id, lang=lang, text=texts.get(lang))
        if lang in prepared.audio:
            source = prepared.audio[lang]
            target = Path(recordings_dir) / f"{item.id}_{lang}{source.suffix.lower()}"
            copy_atomic(source, target)
            staged.paths.append(target)
            row.audio_path = str(target)
        session.add(row)
    if flush:
        session.flush()
    return item


def add_item(session: Session, spec: ItemSpec, *, recordings_dir: Path, staged: StagedFiles,
             emergency_repeat: int = DEFAULT_EMERGENCY_REPEAT, base_dir: Path | None = None,
             cli: bool = False, by: str | None = None) -> ContentItem:
    prepared = prepare_item(session, spec, base_dir=base_dir, cli=cli)
    return write_item(session, prepared, recordings_dir=recordings_dir, staged=staged,
                      emergency_repeat=emergency_repeat, by=by)


def spec_from_options(values: dict[str, Any], tz_name: str) -> ItemSpec:
    """Validate CLI options; an error names the option (``--valid-from``)."""
    data = {key: value for key, value in values.items() if value is not None}
    try:
        return ItemSpec.model_validate(data, context={"tz": tz_name})
    except ValidationError as exc:
        raise validation_error(exc, None, cli=True) from exc


# --------------------------------------------------------------------------
# Import files
# --------------------------------------------------------------------------

@dataclass
class ContentSource:
    source: str
    base_dir: Path
    specs: list[tuple[ItemSpec, int | None, str]]  # spec, CSV line, TOML field prefix


def read_content_file(path: Path, tz_name: str) -> ContentSource:
    """Parse a TOML or CSV content file; the first error names the file and the item or line."""
    path = Path(path)
    source = str(path)
    try:
        data = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError("không tìm thấy tệp / file not found", source=source) from exc
    except IsADirectoryError as exc:
        raise InputError("đây là thư mục, không phải tệp / this is a folder, not a file", source=source) from exc
    except UnicodeDecodeError as exc:
        raise InputError("tệp không phải UTF-8 / file is not UTF-8 (Excel: 'CSV UTF-8')", source=source) from exc
    base = path.resolve().parent
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            raw = tomllib.loads(data)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"TOML không hợp lệ / invalid TOML: {exc}", source=source) from exc
        try:
            parsed = ContentFile.model_validate(raw, context={"tz": tz_name})
        except ValidationError as exc:
            raise validation_error(exc, source) from exc
        return ContentSource(source, base, [(spec, None, f"items[{i}]") for i, spec in enumerate(parsed.items, 1)])
    if suffix in (".csv", ".tsv", ".txt"):
        return ContentSource(source, base, _read_csv(data, source, tz_name))
    raise InputError("cần tệp .toml hoặc .csv / expected a .toml or .csv file", source=source)


def _read_csv(data: str, source: str, tz_name: str) -> list[tuple[ItemSpec, int | None, str]]:
    lines = data.splitlines()
    if not lines or not lines[0].strip():
        raise InputError("tệp trống hoặc thiếu dòng tiêu đề / empty file or no header line", source=source, line=1)
    first = lines[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    rows_in = csv_lines(data, delimiter, source)
    header = [nfc(cell).lower() for cell in next(rows_in)[1]]
    for name in header:
        if name not in CSV_COLUMNS:
            raise InputError(f"cột không được hỗ trợ / unknown column '{name}' (có/known: {', '.join(CSV_COLUMNS)})",
                             source=source, line=1)
    for name in ("title",):
        if name not in header:
            raise InputError(f"thiếu cột '{name}' / missing column '{name}'", source=source, line=1)
    if len(set(header)) != len(header):
        raise InputError("tên cột bị lặp / a column appears twice", source=source, line=1)
    specs = []
    for line, cells in rows_in:
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header):
            raise InputError(f"dòng có {len(cells)} ô, tiêu đề có {len(header)} / row has {len(cells)} cells, "
                             f"header has {len(header)} (dấu phẩy trong nội dung? đặt trong ngoặc kép / a comma "
                             "inside a text? quote it)", source=source, line=line)
        row = {name: cells[i] for i, name in enumerate(header) if i < len(cells) and cells[i].strip()}
        try:
            specs.append((ItemSpec.model_validate(row, context={"tz": tz_name}), line, ""))
        except ValidationError as exc:
            raise validation_error(exc, source, line=line) from exc
    if not specs:
        raise InputError("không có tin nào / no items in the file", source=source)
    return specs


def import_items(session: Session, content: ContentSource, *, recordings_dir: Path, staged: StagedFiles,
                 emergency_repeat: int = DEFAULT_EMERGENCY_REPEAT, by: str | None = None) -> list[ContentItem]:
    """All-or-nothing: every item is checked before the first is written."""
    topics: dict[tuple[str, str | None], Topic] = {}
    prepared = [prepare_item(session, spec, base_dir=content.base_dir, source=content.source, line=line,
                             prefix=prefix, topics=topics) for spec, line, prefix in content.specs]
    items = [write_item(session, p, recordings_dir=recordings_dir, staged=staged,
                        emergency_repeat=emergency_repeat, flush=False, by=by) for p in prepared]
    session.flush()
    return items


# --------------------------------------------------------------------------
# Reading, for the CLI and the other modules
# --------------------------------------------------------------------------

def get_item(session: Session, item_id: int) -> ContentItem:
    item = session.get(ContentItem, item_id)
    if item is None:
        raise NotFoundError(f"không có tin số {item_id} / no content item {item_id}")
    return item


def item_texts(session: Session, item: ContentItem) -> dict[str, ContentText]:
    """lang -> ContentText, Vietnamese first."""
    rows = session.exec(select(ContentText).where(ContentText.item_id == item.id).order_by(ContentText.id)).all()
    return {row.lang: row for row in sorted(rows, key=lambda r: (r.lang != "vi", r.id))}


def spoken_text(session: Session, item: ContentItem, lang: str = "vi") -> str | None:
    row = item_texts(session, item).get(lang)
    return row.text if row else None


def sms_body(session: Session, item: ContentItem) -> str:
    """The SMS text: ``sms_text`` if the item has one, its Vietnamese text otherwise."""
    body = item.sms_text or spoken_text(session, item, "vi")
    if not body:
        raise InputError(f"tin số {item.id} không có nội dung cho SMS / item {item.id} has no text for SMS")
    return body


def effective_repeat(item: ContentItem) -> int:
    """Times to read the item in one bulletin (at least once)."""
    return max(1, item.repeat or 1)


def list_items(session: Session, *, status: str | None = None, topic: str | None = None,
               channel: str | None = None, include_retired: bool = False) -> list[ContentItem]:
    query = select(ContentItem)
    if status:
        query = query.where(ContentItem.status == status)
    elif not include_retired:
        query = query.where(ContentItem.status != ItemStatus.RETIRED)
    if topic:
        query = query.where(ContentItem.topic_id == find_topic(session, topic).id)
    items = list(session.exec(query.order_by(ContentItem.id)).all())
    if channel:
        items = [item for item in items if channel in item.channels]
    return items


def set_status(session: Session, item_id: int, status: ItemStatus, *, by: str | None = None
               ) -> tuple[ContentItem, bool]:
    """Approve or retire. Returns (item, changed). An approval records ``by`` (who) and when."""
    item = get_item(session, item_id)
    if item.status == status:
        return item, False
    item.status = status
    item.updated_at = utcnow()
    if status == ItemStatus.APPROVED:
        item.approved_by, item.approved_at = by, item.updated_at
    session.add(item)
    session.flush()
    return item, True


def topic_labels(session: Session) -> dict[int, tuple[str, str, str]]:
    """topic id -> (plan code, topic code, topic title)."""
    rows = session.exec(select(Topic.id, Plan.code, Topic.code, Topic.title).join(Plan)).all()
    return {topic_id: (plan_code, code, title) for topic_id, plan_code, code, title in rows}


# --------------------------------------------------------------------------
# Correcting an item
# --------------------------------------------------------------------------

EDITABLE_FIELDS = ("title", "topic", "text", "sms_text", "channels", "priority", "repeat", "valid_from",
                   "valid_until")
CLEARABLE_FIELDS = ("sms_text", "valid_from", "valid_until")


@dataclass
class ItemEdit:
    item: ContentItem
    changes: list[tuple[str, Any, Any]]  # (field, before, after), as a person reads them
    status_before: str
    status_after: str

    @property
    def changed(self) -> bool:
        return bool(self.changes) or self.status_before != self.status_after


def _topic_label(session: Session, topic_id: int | None) -> str | None:
    if topic_id is None:
        return None
    code, plan_code = session.exec(select(Topic.code, Plan.code).join(Plan).where(Topic.id == topic_id)).one()
    return f"{plan_code}:{code}"


def item_values(session: Session, item: ContentItem) -> dict[str, Any]:
    """What an edit starts from: the item's fields as an operator writes them (a form's initial values)."""
    texts = item_texts(session, item)
    return {
        "title": item.title, "topic": _topic_label(session, item.topic_id),
        "text": texts["vi"].text if "vi" in texts and texts["vi"].text else None,
        "texts": {lang: row.text for lang, row in texts.items() if lang != "vi" and row.text},
        "audio": {lang: row.audio_path for lang, row in texts.items() if row.audio_path},
        "channels": list(item.channels), "priority": item.priority, "repeat": item.repeat,
        "valid_from": item.valid_from, "valid_until": item.valid_until, "sms_text": item.sms_text,
    }


def edit_item(session: Session, item_id: int, changes: dict[str, Any], *, tz_name: str,
              approve: bool = False, by: str | None = None) -> ItemEdit:
    """Correct an item in the caller's transaction; every rule of ``add`` is checked again.

    ``changes`` maps fields of ``EDITABLE_FIELDS`` to what the operator typed (None: not given;
    "" clears one of ``CLEARABLE_FIELDS``). An approved item that changes goes back to draft unless
    ``approve`` (recorded as approved ``by``); ``updated_at`` moves on, so a bulletin rendered ahead is
    rendered again.
    """
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise InputError(f"không sửa được / cannot edit: {', '.join(sorted(unknown))}")
    item = get_item(session, item_id)
    before = item_values(session, item)
    given = {key: value for key, value in changes.items() if value is not None}
    for key, value in list(given.items()):
        if isinstance(value, str) and not value.strip():
            if key not in CLEARABLE_FIELDS:
                raise InputError("trống / empty", field=f"--{key.replace('_', '-')}")
            given[key] = None
    merged = {**before, **given}
    data = {key: value for key, value in merged.items() if value is not None}
    try:
        spec = ItemSpec.model_validate(data, context={"tz": tz_name})
    except ValidationError as exc:
        raise validation_error(exc, None, cli=True) from exc
    topic = None
    if spec.topic:
        try:
            topic = find_topic(session, spec.topic)
        except BroadcasterError as exc:
            raise InputError(str(exc), field="--topic") from exc
    after = {
        "title": spec.title, "topic": _topic_label(session, topic.id) if topic else None, "text": spec.text,
        "sms_text": spec.sms_text, "channels": list(spec.channels or ITEM_CHANNELS), "priority": spec.priority,
        "repeat": spec.repeat if spec.repeat is not None else item.repeat,
        "valid_from": spec.valid_from, "valid_until": spec.valid_until,
    }
    changed = [(key, before[key], after[key]) for key in EDITABLE_FIELDS if before[key] != after[key]]
    status_before = item.status
    status = status_before
    if approve:
        status = ItemStatus.APPROVED.value
    elif changed and status_before == ItemStatus.APPROVED:
        status = ItemStatus.DRAFT.value
    if not changed and status == status_before:
        return ItemEdit(item, [], status_before, status_before)
    for key, _old, new in changed:
        if key == "topic":
            item.topic_id = topic.id if topic else None
        elif key == "text":
            row = item_texts(session, item).get("vi") or ContentText(item_id=item.id, lang="vi")
            row.text = new
            session.add(row)
        else:
            setattr(item, key, new)
    item.status = status
    item.updated_at = utcnow()
    if approve:
        item.approved_by, item.approved_at = by, item.updated_at
    elif status != ItemStatus.APPROVED:  # the approval was of the text before the edit
        item.approved_by = item.approved_at = None
    session.add(item)
    session.flush()
    return ItemEdit(item, changed, status_before, status)


def set_recording(session: Session, item_id: int, lang: str, source: Path, *, recordings_dir: Path,
                  staged: StagedFiles) -> ItemEdit:
    """Give an item (a new) recording in ``lang``, checked as ``add`` checks one, in the caller's transaction.

    Like any edit, an approved item goes back to draft and ``updated_at`` moves on (re-rendered)."""
    try:
        lang = _lang(lang)
    except ValueError as exc:
        raise InputError(str(exc), field="lang") from exc
    try:
        check_recording(source)
    except ValueError as exc:
        raise InputError(str(exc), field="audio") from exc
    item = get_item(session, item_id)
    row = item_texts(session, item).get(lang) or ContentText(item_id=item.id, lang=lang)
    target = Path(recordings_dir) / f"{item.id}_{lang}{source.suffix.lower()}"
    before = row.audio_path
    copy_atomic(source, target)
    if before is None or Path(before) != target:  # a file replaced in place is never removed on failure
        staged.paths.append(target)
    row.audio_path = str(target)
    session.add(row)
    status_before = item.status
    if item.status == ItemStatus.APPROVED:
        item.status = ItemStatus.DRAFT.value
        item.approved_by = item.approved_at = None
    item.updated_at = utcnow()
    session.add(item)
    session.flush()
    return ItemEdit(item, [(f"audio.{lang}", before, str(target))], status_before, item.status)
