"""Reports: what the delivery log achieved against a plan's targets, and the log itself.

Pure functions over a session: ``periods`` (report periods, scaling and pace,
shared with the composer), ``aggregate`` (the SQL and what each figure
filters), ``build`` (the report), ``log`` (the delivery log); ``formats``,
``document`` (the official form) and ``chart`` lay a report out; the commands
are in ``cli/reports``. What a delivery row means is defined in
``deliveries``; this package only counts. Every number has one meaning; the
rules are printed under every report (``formats.RULES``) and explained in
``docs/reports.md``:

- **Time.** A delivery belongs to the period in which it was *written*
  (``Delivery.created_at``), in the report's time zone (the station's, else
  the config's, Asia/Ho_Chi_Minh): a delivery written 2023-03-31 20:00 UTC is
  2023-04-01 03:00 local and counts in April. A bulletin belongs with the
  deliveries it carried.
- **Sessions** (buổi phát) are bulletins that aired plan content: a
  loudspeaker bulletin with at least one plan item ``played``, or an SMS send
  (campaign) with at least one plan message sent. Scheduled bulletins,
  announcements and SMS sends are separate rows of the channel table; a
  bulletin that aired nothing of the plan is shown on its own row ("outside
  the plan") and is in no total. A session is *late* when it started
  ``LATE_AFTER_S`` seconds or more after it was due.
- **Broadcasts** (lượt phát) are plan items ``played`` (one item in one
  bulletin, however many readings). **Content airtime** is their speech
  (``Delivery.duration_s``): what airtime targets count. **On-air time** is
  the whole of each session (``Bulletin.started_at..ended_at``, else
  ``duration_s``): jingles, ident and pauses included.
- **SMS sent** = ``sent``, ``delivered`` or ``undelivered`` (it left the
  machine); **delivered** = ``delivered``; **undelivered** apart.
- **Not done** are separate columns, counted in deliveries: pending or in
  progress (``pending``, ``sending``, ``playing``), ``cancelled``, ``failed``,
  ``missed``, ``interrupted``, ``uncertain``, ``skipped``. Only ``failed`` is a
  failure.
- **People reached** is a count of distinct people: the distinct SMS
  recipients with ``sent`` or ``delivered`` plus the ``listeners`` of each
  distinct station that played plan content (the two may overlap and are
  simply added). A total counts each person once, so rows can add up to more.
  A people target is never scaled by months: it is compared with the people
  reached from the start of the target's own period (the month, quarter or
  year holding the end of the report period; the plan's start for a
  whole-plan target) to the end of the report period.
- **Scaling** (every other metric). A target is stated per month, quarter,
  year or for the whole plan; the report period is measured in calendar months
  (``months_in``). The target for the period is ``amount × months`` (per
  month), ``× months / 3`` (quarter), ``× months / 12`` (year), ``× months /
  months of the plan`` (whole plan).
- **Pace.** Due by now = the target × the share of its window that has
  elapsed at ``as_of``. Status: *done* when achieved ≥ target; *on track* when
  achieved ≥ due by now; otherwise *behind*.
- **Totals.** The topic table and the channel table count the same deliveries
  and bulletins, so their totals are equal; a bulletin carrying two topics is
  a session of each topic and one session in the total.
- **Scope.** A delivery belongs to a plan through its topic. A target with a
  station counts only that station's deliveries; ``station_code`` filters
  everything (and drops targets of other stations, and the plan's targets for
  a topic, channel and metric the station has a target of its own for).
  ``by_station`` adds one row per station, each what that station's own
  report says, furthest behind pace first.
- **Rollup.** Figures are read from the hourly rollup (``rollup``) kept by
  triggers on the log, a station's people from its own reach rows;
  ``rollup=False`` counts the log itself, the reference.
"""

from .build import (
    Report,
    StationInfo,
    StationResult,
    TargetResult,
    Totals,
    aggregate_statements,
    build_report,
    pace_summary,
)
from .log import LogRow, parse_moment, query_log
from .periods import (
    Period,
    elapsed_fraction,
    months_in,
    pace_status,
    parse_report_period,
    people_window,
    target_scale,
)
from .terms import (
    ANNOUNCEMENT,
    BEHIND,
    CANCELLED,
    CHANNEL_LABELS,
    CHANNEL_ROW_LABELS,
    CHANNEL_ROWS,
    DELIVERY_STATUS_LABELS,
    DONE,
    KNOWN_STATUSES,
    LATE_AFTER_S,
    METRIC_LABELS,
    ON_TRACK,
    OUTSIDE_PLAN,
    SCHEDULED,
    SMS_ROW,
    STATUS_COLUMNS,
    STATUS_LABELS,
    WHOLE_PLAN_LABEL,
)

__all__ = [
    "ANNOUNCEMENT", "BEHIND", "CANCELLED", "CHANNEL_LABELS", "CHANNEL_ROWS", "CHANNEL_ROW_LABELS",
    "DELIVERY_STATUS_LABELS", "DONE", "KNOWN_STATUSES", "LATE_AFTER_S", "METRIC_LABELS", "ON_TRACK",
    "OUTSIDE_PLAN", "SCHEDULED", "SMS_ROW", "STATUS_COLUMNS", "STATUS_LABELS", "WHOLE_PLAN_LABEL", "LogRow",
    "Period", "Report", "StationInfo", "StationResult", "TargetResult", "Totals", "aggregate_statements", "build_report",
    "elapsed_fraction", "months_in", "pace_status", "pace_summary", "parse_moment", "parse_report_period", "people_window",
    "query_log", "target_scale",
]
