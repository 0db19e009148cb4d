"""Audio commands: ``normalize``, ``render``, ``play``, ``cache``.

Thin: parse, call :mod:`broadcaster.audio.render` / players / cache, print.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ..errors import BroadcasterError, InputError, NotFoundError
from .common import BroadcasterGroup, echo_json, get_app, json_option


def _mmss(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 60:02d}:{whole % 60:02d}"


def _fmt_db(value: float | None, unit: str) -> str:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return f"- {unit}"
    return f"{value:.1f} {unit}"


def _station(session, code: str | None, *, required: bool):
    from .. import stations

    if code:
        return stations.get_station(session, code)
    found = stations.list_stations(session)
    if len(found) == 1:  # a commune usually has one station: no need to name it
        return found[0]
    if required:
        raise InputError("cần --station (có nhiều hơn một đài) / --station is needed (several stations)",
                         field="--station")
    return None


# ---------------------------------------------------------------------------- normalize


_MAX_DIFF_WIDTH = 80


def _read_as_written(written: str, spoken: list[str]) -> bool:
    """True when the line is spoken exactly as written (but for the full stop the voice drops)."""
    return spoken == [written.rstrip(" .;…")]


def _side_by_side(rows: list[tuple[str, list[str]]], width: int) -> list[str]:
    """Two wrapped columns, the written line on the left and its spoken sentences on the right;
    the gutter of a line's first row is "→" where the reading differs from the writing, "=" where not."""
    import textwrap

    column = (width - 3) // 2
    out = [f"{'Văn bản / written':<{column}} │ Đọc là / spoken", "─" * column + "─┼─" + "─" * column]
    for written, spoken in rows:
        left = textwrap.wrap(written, column) or [""]
        right = [part for sentence in spoken for part in (textwrap.wrap(sentence, column) or [""])] or ["-"]
        mark = "=" if _read_as_written(written, spoken) else "→"
        for i in range(max(len(left), len(right))):
            a = left[i] if i < len(left) else ""
            b = right[i] if i < len(right) else ""
            out.append(f"{a:<{column}} {mark if i == 0 else '│'} {b}".rstrip())
    return out


@click.command("normalize")
@click.argument("text", required=False)
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Đọc văn bản từ tệp UTF-8 ('-' = stdin) / read the text from a UTF-8 file.")
@click.option("--diff", "diff", is_flag=True,
              help="Văn bản gốc bên cạnh câu sẽ đọc, dòng nào đổi / the written text beside what is spoken.")
@click.option("--item", "item_id", type=int, default=None,
              help="Nội dung tiếng Việt của tin số ID / the Vietnamese text of content item ID.")
def normalize_command(text: str | None, file: Path | None, diff: bool, item_id: int | None) -> None:
    """In đúng câu chữ sẽ được đọc, mỗi câu một dòng / print exactly what will be spoken, one sentence a line.

    Ví dụ / example: broadcaster normalize "UBND xã thông báo lịch tiếp dân ngày 20/1/2022."
    """
    import shutil
    import unicodedata

    from ..audio.normalize import normalize_text

    if [text is not None, file is not None, item_id is not None].count(True) != 1:
        raise InputError("cần TEXT, --file hoặc --item (một trong ba) / give TEXT, --file or --item (one of them)")
    if item_id is not None:
        from .. import content

        with get_app().read_session() as session:
            item = content.get_item(session, item_id)
            text = content.spoken_text(session, item, "vi")
            title = item.title
        if not text:
            raise InputError(f"tin số {item_id} không có nội dung tiếng Việt để đọc (chỉ có ghi âm?) / item "
                             f"{item_id} has no Vietnamese text to speak (recordings only?)", field="--item")
        click.echo(f"#{item_id} {title}", err=True)
    if file is not None:
        if str(file) == "-":
            text = sys.stdin.read()
        else:
            try:
                text = file.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise InputError(f"không tìm thấy tệp / file not found: {file}", field="--file") from None
            except UnicodeDecodeError:
                raise InputError(f"tệp không phải UTF-8 / not a UTF-8 file: {file}", field="--file") from None
    abbreviations = dict(get_app().config.audio.abbreviations)
    if not diff:
        for sentence in normalize_text(text or "", abbreviations):
            click.echo(sentence)
        return
    # The normaliser works line by line, so each written line maps to its own spoken sentences.
    lines = [" ".join(line.split()) for line in unicodedata.normalize("NFC", text or "").splitlines()]
    rows = [(line, normalize_text(line, abbreviations)) for line in lines if line]
    width = min(_MAX_DIFF_WIDTH, max(40, shutil.get_terminal_size((_MAX_DIFF_WIDTH, 24)).columns))
    for row in _side_by_side(rows, width):
        click.echo(row)
    changed = sum(1 for line, spoken in rows if not _read_as_written(line, spoken))
    click.echo(f"{changed}/{len(rows)} dòng đọc khác chữ viết / lines read differently")


# ---------------------------------------------------------------------------- render


class _Progress:
    """A rich progress bar on stderr (only drawn on a terminal)."""

    def __init__(self, total_items: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]Đang tạo bản tin / rendering[/bold]"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task = self.progress.add_task("", total=total_items + 2)

    def __enter__(self) -> _Progress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def __call__(self, done: int, total: int, label: str) -> None:
        self.progress.update(self.task, completed=done, total=total, description=label)


@click.command("render")
@click.option("--item", "item_ids", type=int, multiple=True, required=True,
              help="Số tin, lặp lại được, theo thứ tự phát / item id, repeatable, in playing order.")
@click.option("--station", "station_code", default=None,
              help="Mã đài (cho lời giới thiệu đài; mặc định đài duy nhất nếu chỉ có một) / station code "
                   "(for the ident; default: the only station if there is one).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Tệp kết quả (.mp3 hoặc .wav) / output file (.mp3 or .wav); mặc định/default: thư mục "
                   "bulletins/ của dữ liệu.")
@click.option("--title", default=None, help="Tên bản tin (thẻ ID3) / bulletin title (ID3 tag).")
@json_option
def render_command(item_ids: tuple[int, ...], station_code: str | None, output: Path | None, title: str | None,
                   as_json: bool) -> None:
    """Tạo tệp bản tin từ các tin / render content items into one bulletin file.

    Nhạc hiệu, lời giới thiệu đài, các tin (tin khẩn đọc hai lần), nhạc kết.
    Intro jingle, station ident, the items (emergency items read twice), outro.
    """
    from .. import content
    from ..audio.render import Renderer

    app = get_app()
    renderer = Renderer(app.config)
    # Read the database in a short transaction: synthesis may wait on the network.
    with app.session() as session:
        items = [content.get_item(session, item_id) for item_id in item_ids]
        station = _station(session, station_code, required=False)
        job = renderer.prepare(session, items, station)
    if len(job.items) > 1 and not as_json:
        with _Progress(len(job.items)) as bar:
            result = renderer.render(job, output=output, progress=bar, title=title)
    else:
        result = renderer.render(job, output=output, title=title)

    loud = result.loudness
    if as_json:
        echo_json({
            "path": str(result.path), "manifest": str(result.manifest_path),
            "duration_s": round(result.duration_s, 3), "loudness": loud.as_dict(),
            "backends": {str(k): v for k, v in result.backends.items()},
            "item_seconds": {str(k): v for k, v in result.item_seconds.items()},
            "fallbacks": len(result.fallbacks), "station": job.station_code,
        })
        return
    click.echo(f"Tệp / file: {result.path}")
    click.echo(f"Thời lượng / duration: {_mmss(result.duration_s)} ({result.duration_s:.1f} s)")
    click.echo(f"Âm lượng / loudness: {_fmt_db(loud.integrated_lufs, 'LUFS')}, "
               f"đỉnh thực / true peak {_fmt_db(loud.true_peak_dbtp, 'dBTP')}")
    if job.station_name:
        click.echo(f"Đài / station: {job.station_code} ({job.station_name})")
    click.echo("Giọng đọc / voices:")
    for item in job.items:
        times = f" ×{item.repeat}" if item.repeat > 1 else ""
        click.echo(f"  tin/item {item.id} «{item.title}»{times}: {result.backends[item.id]} "
                   f"({_mmss(result.item_seconds[item.id])})")
    if result.fallbacks:
        used = ", ".join(sorted({f["backend"] for f in result.fallbacks if f.get("backend")})) or "-"
        click.echo(f"Cảnh báo / warning: {len(result.fallbacks)} đoạn đọc bằng giọng dự phòng ({used}) vì "
                   f"giọng chính không dùng được; xem {result.manifest_path.name} / {len(result.fallbacks)} "
                   f"piece(s) used the fallback voice ({used}); see the manifest.", err=True)


# ---------------------------------------------------------------------------- play


@click.command("play")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--station", "station_code", default=None,
              help="Mã đài (mặc định đài duy nhất) / station code (default: the only station).")
@click.option("--here", is_flag=True, help="Phát ra loa của máy này để nghe thử, không qua đài / play on this "
              "PC's sound card to listen first, not through the station.")
@click.option("--next", "next_station", default=None, metavar="STATION",
              help="Nghe thử ở máy này bản tin sắp phát của đài (đã dựng trước) / listen here to the station's "
                   "next bulletin, rendered ahead.")
@click.option("--command", "device_command", default=None,
              help="Với --here/--next: lệnh phát, {file} là tệp (mặc định ffplay, paplay, aplay) / with "
                   "--here/--next: play command, {file} is the file.")
def play_command(file: Path | None, station_code: str | None, here: bool, next_station: str | None,
                 device_command: str | None) -> None:
    """Phát một tệp qua đài, hoặc nghe thử tại máy này (không ghi vào nhật ký phát) / play a file through a
    station's player, or listen on this PC (not logged).

    Phát tay một tệp không tính là một lần phát theo kế hoạch.
    A manual play of a file is not a plan delivery and is not logged as one.
    """
    import threading

    from .. import stations
    from ..audio.players import PlayerError, make_player
    from ..timeutil import local, utcnow

    app = get_app()
    if next_station is not None:
        if file is not None:
            raise InputError("dùng FILE hoặc --next, không cả hai / give FILE or --next, not both", field="--next")
        with app.read_session() as session:
            bulletin = stations.next_rendered_bulletin(session, next_station, utcnow())
            tz_name = stations.get_station(session, next_station).timezone
        if bulletin is None:
            raise NotFoundError(f"đài {next_station} chưa có bản tin dựng trước (daemon dựng trước "
                                f"{app.config.render.ahead_minutes} phút) / no bulletin rendered ahead for "
                                f"{next_station} yet")
        file, here = Path(bulletin.audio_path), True
        click.echo(f"Bản tin lúc / bulletin for {local(bulletin.slot_time, tz_name):%Y-%m-%d %H:%M}", err=True)
    if file is None:
        raise InputError("cần FILE hoặc --next STATION / give FILE or --next STATION")
    if not file.is_file():
        raise NotFoundError(f"không tìm thấy tệp / file not found: {file}")
    if device_command and not here:
        raise InputError("--command chỉ dùng với --here hoặc --next / --command goes with --here or --next",
                         field="--command")
    if here:
        code, name, tz_name = "here", "máy này / this PC", app.config.broadcaster.timezone
        kind, options = "device", ({"command": device_command} if device_command else {})
    else:
        with app.session() as session:
            station = _station(session, station_code, required=True)
            code, name, tz_name = station.code, station.name, station.timezone
            kind, options = station.player, dict(station.player_options)
    try:
        player = make_player(kind, options)
    except ValueError as exc:
        raise InputError(str(exc), field="player") from None
    click.echo(f"Đang phát / playing: {file.name} → {code} ({name}, {kind})", err=True)
    stop = threading.Event()
    t0 = time.monotonic()
    try:
        result = player.play(file, station_code=code, stop_event=stop)
    except PlayerError as exc:
        raise BroadcasterError(str(exc)) from None
    except KeyboardInterrupt:
        stop.set()
        click.echo(f"Đã dừng sau / stopped after {time.monotonic() - t0:.1f} s", err=True)
        raise SystemExit(130) from None
    click.echo(f"Bắt đầu / started: {local(result.started_at, tz_name):%Y-%m-%d %H:%M:%S}")
    click.echo(f"Kết thúc / ended:   {local(result.ended_at, tz_name):%Y-%m-%d %H:%M:%S}")
    click.echo(f"Thời lượng / duration: {_mmss(result.duration_s)} ({result.duration_s:.1f} s)")
    click.echo(f"Chi tiết / detail: {result.detail}")
    if result.interrupted:
        click.echo("Bị ngắt / interrupted", err=True)


# ---------------------------------------------------------------------------- cache


@click.group("cache", cls=BroadcasterGroup)
def cache_group() -> None:
    """Bộ nhớ đệm giọng đọc / the speech render cache."""


def _cache():
    from ..audio.cache import AudioCache

    return AudioCache(get_app().config.cache_dir)


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


@cache_group.command("stats")
@json_option
def cache_stats(as_json: bool) -> None:
    """Số tệp và dung lượng / files and size."""
    from datetime import UTC, datetime

    stats = _cache().stats()

    def when(epoch: float | None) -> str | None:
        return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else None

    data = {"directory": str(stats.directory), "files": stats.files, "bytes": stats.total_bytes,
            "oldest_use": when(stats.oldest_access), "newest_use": when(stats.newest_access)}
    if as_json:
        echo_json(data)
        return
    click.echo(f"Thư mục / directory: {data['directory']}")
    click.echo(f"Số tệp / files: {stats.files}")
    click.echo(f"Dung lượng / size: {_mb(stats.total_bytes)}")
    if stats.files:
        click.echo(f"Dùng cũ nhất / least recently used: {data['oldest_use']}")
        click.echo(f"Dùng gần nhất / most recently used: {data['newest_use']}")


@cache_group.command("prune")
@click.option("--max-age-days", type=click.FloatRange(min=0), default=None,
              help="Xóa tệp không dùng quá N ngày / remove renders unused for N days.")
@click.option("--max-mb", type=click.FloatRange(min=0), default=None,
              help="Giữ tối đa N MB, xóa tệp ít dùng nhất trước / keep at most N MB, least recently used go first.")
@click.option("--dry-run", is_flag=True, help="Chỉ xem sẽ xóa gì / only show what would be removed.")
def cache_prune(max_age_days: float | None, max_mb: float | None, dry_run: bool) -> None:
    """Dọn ổ đĩa theo mục [retention] / free disk space as [retention] says.

    Không có tùy chọn: xóa bản tin đã dựng, tệp đã chuyển cho đài, dòng hộp thư SMS và nhật ký
    chương trình chạy nền quá hạn (nhật ký phát trong cơ sở dữ liệu không bao giờ bị xóa).
    With --max-age-days / --max-mb: prune the speech cache instead.
    """
    if max_age_days is None and max_mb is None:
        from .admin import echo_prune

        echo_prune(get_app(), dry_run)
        return
    if dry_run:
        raise InputError("--dry-run chỉ dùng khi không có --max-age-days/--max-mb / --dry-run is for the "
                         "[retention] pruning only")
    cache = _cache()
    result = cache.prune(max_age_days=max_age_days,
                         max_bytes=int(max_mb * 1_000_000) if max_mb is not None else None)
    left = cache.stats()
    click.echo(f"Đã xóa / removed: {result.files_removed} tệp/files, {_mb(result.bytes_freed)}; "
               f"còn / left: {left.files} tệp/files, {_mb(left.total_bytes)}")


COMMANDS = [normalize_command, render_command, play_command, cache_group]
