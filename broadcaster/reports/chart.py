"""The progress chart: % of each target achieved, by topic name and channel, as a PNG."""

from __future__ import annotations

from pathlib import Path

from ..fileutil import atomic_path
from ..timeutil import local
from .build import Report
from .formats import commune_heading, date_text, lang_index, number_text, short_title, station_names, t
from .terms import CHANNEL_LABELS, METRIC_LABELS, STATUS_LABELS, WHOLE_PLAN_LABEL

STATUS_COLOURS = {"done": "#2e7d32", "on_track": "#1565c0", "behind": "#e65100"}


def chart_title(report: Report, lang: str = "vi") -> str:
    return (f"{commune_heading(report, lang)}{t('stations', lang)}: {station_names(report, lang)}\n"
            f"{report.plan_code} — {t('period', lang).lower()} {report.period.label} "
            f"({date_text(report.period.start)}–{date_text(report.period.end)})")


def write_chart(report: Report, path: Path, lang: str = "vi") -> None:
    """Horizontal bars of % achieved per target, by topic name, with the pace line and the 100% line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    i = lang_index(lang)
    order = {code: n for n, code in enumerate(x.key for x in report.topics)}
    rows = sorted((r for r in report.targets if r.percent is not None),
                  key=lambda r: order.get(r.topic_code, len(order)))
    labels = []
    for r in rows:
        topic = short_title(r.topic_title, 30) if r.topic_title else WHOLE_PLAN_LABEL[i]
        station = f" · {r.station_code}" if r.station_code else ""
        mark = " *" if r.illustrative else ""
        labels.append(f"{topic}{mark}\n{CHANNEL_LABELS[r.channel][i]}: {METRIC_LABELS[r.metric][i]}{station}")
    bar_space = 0.55 * max(1, len(rows))
    footnote = t("illustrative", lang) if report.illustrative else ""
    height = 2.3 + bar_space + (0.3 if footnote else 0)  # title and axis + legend + bars, in inches
    plt.rcParams["font.family"] = "DejaVu Sans"
    fig, ax = plt.subplots(figsize=(11, height), dpi=100)
    pace = report.elapsed * 100
    cap = 200.0
    top = max(110.0, pace + 10, *(min(r.percent, cap) + 45 for r in rows)) if rows else 110.0
    if rows:
        positions = list(range(len(rows)))[::-1]
        shade, previous = False, object()
        for pos, r in zip(positions, rows, strict=True):  # a light band behind each topic's bars
            if r.topic_code != previous:
                shade, previous = not shade, r.topic_code
            if shade:
                ax.axhspan(pos - 0.5, pos + 0.5, color="#f2f2f2", zorder=0)
        values = [min(r.percent, cap) for r in rows]
        stubs = [max(v, top * 0.006) for v in values]  # a 0% bar still shows its colour
        ax.barh(positions, stubs, color=[STATUS_COLOURS[r.status] for r in rows], height=0.62, zorder=2)
        ax.set_yticks(positions, labels, fontsize=8)
        for pos, r in zip(positions, rows, strict=True):  # each target's own pace (people: over its window)
            due = min(100 * r.due / r.target, cap) if r.target else 0.0
            ax.plot([due, due], [pos - 0.42, pos + 0.42], color="#c62828", linewidth=2.2, zorder=4)
        for pos, r, value in zip(positions, rows, values, strict=True):
            more = "▸ " if r.percent > cap else ""
            text = f"{more}{number_text(r.percent, lang, 0)}%  ({number_text(r.achieved, lang)}/{number_text(r.target, lang)})"
            ax.text(value + top * 0.012, pos, text, va="center", fontsize=9, zorder=5,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1.0})
        ax.set_ylim(-0.5, len(rows) - 0.5)
    else:
        ax.set_yticks([])
        ax.text(0.5, 0.5, t("no_targets", lang), transform=ax.transAxes, ha="center", va="center", fontsize=12)
    ax.axvline(100, color="#222222", linewidth=1.3, zorder=4)
    ax.set_xlim(0, top)
    ax.set_xlabel(t("chart_x", lang))
    ax.grid(axis="x", color="#dddddd", linewidth=0.6, zorder=1)
    ax.set_axisbelow(True)
    ax.set_title(chart_title(report, lang), fontsize=11, loc="left", pad=26)
    as_of = local(report.as_of, report.timezone).strftime("%d/%m/%Y")
    legend = [Patch(color=STATUS_COLOURS[k], label=STATUS_LABELS[k][i]) for k in ("done", "on_track", "behind")]
    legend.append(Line2D([0], [0], color="#c62828", marker="|", markersize=11, markeredgewidth=2.2,
                         linestyle="none", label=f"{t('pace', lang)} ({as_of}; {t('period', lang).lower()}: "
                                                 f"{number_text(pace, lang, 0)}%)"))
    legend.append(Line2D([0], [0], color="#222222", label="100%"))
    ax.legend(handles=legend, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=5, fontsize=9, frameon=False,
              borderaxespad=0.2, handlelength=1.6, columnspacing=1.2)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if footnote:
        fig.text(0.01, 0.01, footnote, fontsize=9, style="italic", color="#8a1c1c")
    fig.tight_layout(rect=(0, 0.03 if footnote else 0, 1, 1))
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)

