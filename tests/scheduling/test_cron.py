"""Cron expressions mean what Vixie cron means: checked against cronsim, an independent
implementation of Debian cron, over a year of fire times, and through `schedule add`."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.base import BaseTrigger
from cronsim import CronSim

from broadcaster import cron
from broadcaster.errors import InputError
from broadcaster.models import Schedule
from broadcaster.schedules import cron_trigger, fire_times, next_fire_time
from tests.conftest import db_snapshot

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
BERLIN = ZoneInfo("Europe/Berlin")  # DST 2028: 26 March 02:00 -> 03:00, 29 October 03:00 -> 02:00
# crontab(5)'s meaning of the macros; cronsim reads only five fields.
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}

EXPRESSIONS = [
    # the three APScheduler's from_crontab got wrong
    "0 7 * * 1-5/2", "0 7 * * */2", "0 7 * * 0-6",
    "0 7 1 * 1",  # the 1st OR a Monday
    "30 5 */2 * 1",  # dom starts with '*': odd days that are also Mondays (Vixie's AND)
    "0 9 1-7 * 1", "0 18 15 * 6,0",
    "*/15 5-6 * * 1-5", "0 6,17 * * *", "30 5 */2 * *", "0 0 29 2 *", "0 12 * * 7", "0 12 * * 0-6",
    "5 4 * * sun", "0 22 * jan,jul mon-fri", "0 22 * JAN,Jul MON-fri", "0 0 31 * *", "59 23 31 12 *",
    "7/20 * 1,15 * *", "3-10/3 7 * * 2", "0 8 * feb-apr/2 sat", "0 7 * 1/3 *", "0 0 * * mon/2",
    "15 10 1,15 * 3-5", "0 0 */10 * *", "45 6 * * 5-7", "0 */6 * * *", "15 * * * mon",
    "0,30 12-13 * * 1,3-5", "0 0 1 */4 *",
    # hours the Berlin clock skips or repeats
    "30 2 * * *", "0 2,3 * * *", "*/20 2 * * *", "0-59/30 2 * * *", "30 1-3 * 3,10 0", "*/30 * * 10 sun",
    *MACROS,
]


def reference_times(expression: str, tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    times = []
    for moment in CronSim(MACROS.get(expression, expression), start.astimezone(tz)):
        if moment > end:
            return times
        times.append(moment.astimezone(UTC))
    return times


def cron_times(expression: str, tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    return list(fire_times(Schedule(cron=expression, station_id=1, channel="loudspeaker", length_s=60),
                           str(tz), start, end))


def local_texts(times: list[datetime], tz: ZoneInfo = VIETNAM) -> list[str]:
    return [moment.astimezone(tz).strftime("%a %d/%m %H:%M") for moment in times]


@pytest.mark.parametrize("tz", [VIETNAM, BERLIN], ids=str)
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_a_year_of_fire_times_matches_debian_cron(expression: str, tz: ZoneInfo) -> None:
    start = datetime(2027, 12, 31, 23, 59, tzinfo=tz)
    end = datetime(2028, 12, 31, 23, 59, tzinfo=tz)
    expected = reference_times(expression, tz, start, end)
    assert expected, "an expression that never fires in the year tests nothing"
    assert cron_times(expression, tz, start, end) == expected


def test_the_expressions_apscheduler_got_wrong() -> None:
    week = datetime(2026, 11, 30, tzinfo=VIETNAM), datetime(2026, 12, 7, tzinfo=VIETNAM)  # Monday to Monday
    assert local_texts(cron_times("0 7 * * 1-5/2", VIETNAM, *week)) == [
        "Mon 30/11 07:00", "Wed 02/12 07:00", "Fri 04/12 07:00"]
    assert local_texts(cron_times("0 7 * * */2", VIETNAM, *week)) == [
        "Tue 01/12 07:00", "Thu 03/12 07:00", "Sat 05/12 07:00", "Sun 06/12 07:00"]
    assert len(cron_times("0 7 * * 0-6", VIETNAM, *week)) == 7
    december = datetime(2026, 12, 1, tzinfo=VIETNAM), datetime(2027, 1, 1, tzinfo=VIETNAM)
    assert local_texts(cron_times("0 7 1 * 1", VIETNAM, *december)) == [
        "Tue 01/12 07:00", "Mon 07/12 07:00", "Mon 14/12 07:00", "Mon 21/12 07:00", "Mon 28/12 07:00"]
    # Vixie: a day-of-month starting with '*' means AND, even when it restricts
    assert local_texts(cron_times("30 5 */2 * 1", VIETNAM, *december)) == ["Mon 07/12 05:30", "Mon 21/12 05:30"]


def test_skipped_and_repeated_local_times_follow_debian_cron() -> None:
    spring = datetime(2028, 3, 25, 12, tzinfo=BERLIN), datetime(2028, 3, 26, 12, tzinfo=BERLIN)
    autumn = datetime(2028, 10, 28, 12, tzinfo=BERLIN), datetime(2028, 10, 29, 12, tzinfo=BERLIN)
    berlin = "%H:%M%z"
    # a fixed time the clock skips fires at the first minute after the jump
    assert [t.astimezone(BERLIN).strftime(berlin) for t in cron_times("30 2 * * *", BERLIN, *spring)] == [
        "03:00+0200"]
    assert [t.astimezone(BERLIN).strftime(berlin) for t in cron_times("0,30 2 * * *", BERLIN, *spring)] == [
        "03:00+0200"]
    # a fixed time the clock shows twice fires once, the first time
    assert [t.astimezone(BERLIN).strftime(berlin) for t in cron_times("30 2 * * *", BERLIN, *autumn)] == [
        "02:30+0200"]
    # wildcard minutes follow the real clock: nothing in the skipped hour, both passes of the repeated one
    assert cron_times("*/20 2 * * *", BERLIN, *spring) == []
    assert [t.astimezone(BERLIN).strftime(berlin) for t in cron_times("*/30 2 * * *", BERLIN, *autumn)] == [
        "02:00+0200", "02:30+0200", "02:00+0100", "02:30+0100"]
    hourly = cron_times("@hourly", BERLIN, *autumn)
    assert len(hourly) == 25 and all(b - a == timedelta(hours=1) for a, b in zip(hourly, hourly[1:], strict=False))


def test_names_are_case_insensitive_and_macros_mean_their_expansion() -> None:
    assert replace(cron.parse("0 22 * JAN,Jul MON-fri"), text="") == replace(cron.parse("0 22 * 1,7 1-5"), text="")
    new_year = datetime(2027, 12, 20, tzinfo=VIETNAM), datetime(2028, 1, 10, tzinfo=VIETNAM)
    for macro, expansion in MACROS.items():
        assert cron_times(macro.upper(), VIETNAM, *new_year) == cron_times(expansion, VIETNAM, *new_year), macro


def test_rare_dates_are_found_without_scanning_minutes() -> None:
    after = datetime(2097, 1, 1, tzinfo=UTC)
    leap_day = cron.parse("0 0 29 2 *")
    assert leap_day.next_after(after, VIETNAM) == datetime(2104, 2, 28, 17, tzinfo=UTC)  # 2100 is not a leap year
    # Feb 29 that is also a Sunday ('*/7' starts with '*': AND)
    sunday_leap_day = cron.parse("0 6 29 2 */7").next_after(datetime(2026, 1, 1, tzinfo=UTC), VIETNAM)
    assert sunday_leap_day.astimezone(VIETNAM) == datetime(2032, 2, 29, 6, tzinfo=VIETNAM)
    assert sunday_leap_day.astimezone(VIETNAM).weekday() == 6


def test_next_after_needs_an_aware_moment() -> None:
    with pytest.raises(ValueError):
        cron.parse("0 7 * * *").next_after(datetime(2026, 12, 1), VIETNAM)


@pytest.mark.parametrize(("expression", "message"), [
    ("0 7 * * 8", "lịch cron: trường 'thứ' không hợp lệ '8' (0–7, sun–sat) / "
                  "cron: bad day-of-week '8' (0–7, sun–sat)"),
    ("60 7 * * *", "trường 'phút' không hợp lệ '60' (0–59) / cron: bad minute '60'"),
    ("0 24 * * *", "trường 'giờ' không hợp lệ '24' (0–23) / cron: bad hour '24'"),
    ("0 7 0 * *", "trường 'ngày' không hợp lệ '0' (1–31) / cron: bad day-of-month '0'"),
    ("0 7 * 13 *", "trường 'tháng' không hợp lệ '13' (1–12, jan–dec) / cron: bad month '13'"),
    ("0 7 * june *", "trường 'tháng' không hợp lệ 'june'"),
    ("0 7 * * fri-mon", "trường 'thứ' không hợp lệ 'fri-mon'"),
    ("*/0 7 * * *", "trường 'phút' không hợp lệ '*/0'"),
    ("0 7 1,,2 * *", "trường 'ngày' không hợp lệ '1,,2'"),
    ("0 7 L * *", "trường 'ngày' không hợp lệ 'L'"),
    ("0 7 * * 1#2", "trường 'thứ' không hợp lệ '1#2'"),
    ("0 0 30 2 *", "ngày '30' không có trong tháng '2' / cron: day-of-month '30' never occurs in month '2'"),
    ("0 7 * *", "lịch cron cần 5 trường (phút giờ ngày tháng thứ) / cron needs 5 fields"),
    ("0 0 7 * * *", "cron needs 5 fields"),
    ("@reboot", "không có macro '@reboot' / cron: unknown macro '@reboot'"),
])
def test_bad_expressions_name_the_field(expression: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        cron.parse(expression)
    assert caught.value.field == "cron"
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_schedule_add_refuses_a_bad_cron_in_one_line(run, app) -> None:
    before = db_snapshot(app)
    result = run("schedule", "add", "--station", "XA-01", "--cron", "0 7 * * 8", ok=False)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Lỗi / Error: [cron]: lịch cron: trường 'thứ' không hợp lệ '8' (0–7, sun–sat) / "
        "cron: bad day-of-week '8' (0–7, sun–sat)"]
    assert db_snapshot(app) == before


def test_schedule_add_shows_the_next_time_cron_would_pick(run, app) -> None:
    before = datetime.now(UTC)
    result = run("schedule", "add", "--station", "XA-01", "--cron", "0  7 1 * mon")
    listed = json.loads(run("schedule", "list", "--json").output)
    # a slot may fall between the two commands: then either answer is right
    expected = {next(iter(CronSim("0 7 1 * 1", moment.astimezone(VIETNAM)))) for moment in (before, datetime.now(UTC))}
    assert listed[0]["cron"] == "0 7 1 * mon"
    assert datetime.fromisoformat(listed[0]["next"]) in expected
    assert any(moment.strftime("%Y-%m-%d %H:%M") in result.output for moment in expected)


def test_next_fire_time_is_strictly_after() -> None:
    schedule = Schedule(cron="0 7 * * *", station_id=1, channel="loudspeaker", length_s=60)
    at_seven = datetime(2026, 12, 1, 7, tzinfo=VIETNAM)
    assert next_fire_time(schedule, "Asia/Ho_Chi_Minh", at_seven) == at_seven + timedelta(days=1)
    assert next_fire_time(schedule, "Asia/Ho_Chi_Minh", at_seven - timedelta(seconds=1)) == at_seven


def test_apscheduler_trigger_fires_like_crontrigger_would() -> None:
    trigger = cron_trigger("*/15 5-6 * * 1-5", "Europe/Berlin")
    assert isinstance(trigger, BaseTrigger)
    assert str(trigger) == "cron[*/15 5-6 * * 1-5]"
    now = datetime(2028, 3, 24, 5, 15, tzinfo=BERLIN)  # a Friday, on a fire time: it counts, as in CronTrigger
    first = trigger.get_next_fire_time(None, now)
    assert first == now
    sequence = [first]
    for _ in range(15):  # APScheduler asks again once the clock has reached the previous fire time
        sequence.append(trigger.get_next_fire_time(sequence[-1], sequence[-1]))
    end = sequence[-1]
    assert sequence == cron_times("*/15 5-6 * * 1-5", BERLIN, now - timedelta(seconds=1), end)
    assert local_texts(sequence[6:8], BERLIN) == ["Fri 24/03 06:45", "Mon 27/03 05:00"]
    # a scheduler that woke late asks with an old previous time: it gets the next slot after that one
    assert trigger.get_next_fire_time(sequence[0], now + timedelta(days=3)) == sequence[1]
    restored = pickle.loads(pickle.dumps(trigger))
    assert restored.get_next_fire_time(None, now) == now


def test_cron_imports_no_apscheduler() -> None:
    code = "import sys, broadcaster.cron; assert 'apscheduler' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
