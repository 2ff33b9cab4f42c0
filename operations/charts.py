"""The report's charts as inline SVG (matplotlib, no network, no files): the page stays one file.

Text stays text in the SVG (`svg.fonttype: none`), which keeps each chart a few kilobytes, and the
SVG ids are salted with a fixed string so that the same data gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime

import matplotlib

matplotlib.use("Agg")  # no display: the report is rendered on servers and in CI

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

STYLE = {"svg.fonttype": "none", "svg.hashsalt": "smista-report", "font.size": 9, "axes.spines.top": False,
         "axes.spines.right": False}
ACCENT = "#2b6cb0"
WARN = "#c53030"


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML declaration and doctype: it is inlined in HTML


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str, width: float = 6.0) -> str:
    with plt.rc_context(STYLE):
        figure, axis = plt.subplots(figsize=(width, 0.28 * max(len(labels), 3) + 0.6))
        positions = np.arange(len(labels))
        axis.barh(positions, values, color=ACCENT)
        axis.set_yticks(positions, labels)
        axis.invert_yaxis()
        axis.set_title(title, loc="left")
        for position, value in zip(positions, values):
            axis.text(value, position, f" {value:g}", va="center", fontsize=8)
        return _svg(figure)


def hour_of_week_heatmap(matrix: np.ndarray, weekdays: Sequence[str], title: str) -> str:
    """matrix: [7 weekdays, 24 hours] of posts."""
    with plt.rc_context(STYLE):
        figure, axis = plt.subplots(figsize=(8.0, 2.6))
        image = axis.imshow(matrix, aspect="auto", cmap="Blues", interpolation="nearest")
        axis.set_yticks(range(len(weekdays)), weekdays)
        axis.set_xticks(range(0, 24, 2), [f"{hour:02d}" for hour in range(0, 24, 2)])
        axis.set_xlabel("ora (fuso delle ore di servizio)")
        axis.set_title(title, loc="left")
        figure.colorbar(image, ax=axis, fraction=0.03, pad=0.01)
        return _svg(figure)


def timeline(days: Sequence[datetime], posts: Sequence[int], crises: Sequence[tuple[datetime, datetime, str]],
             title: str) -> str:
    """Posts per day, with each crisis episode shaded over its span and named by its intent."""
    with plt.rc_context(STYLE):
        figure, axis = plt.subplots(figsize=(8.0, 2.4))
        axis.plot(days, posts, color=ACCENT, marker="o", markersize=2, linewidth=1)
        for start, end, label in crises:
            axis.axvspan(start, end, color=WARN, alpha=0.25)
            axis.annotate(label, (start, axis.get_ylim()[1]), fontsize=7, color=WARN, va="top")
        axis.xaxis.set_major_formatter(mdates.DateFormatter("%d/%m"))
        axis.set_ylabel("post al giorno")
        axis.set_title(title, loc="left")
        return _svg(figure)


def forecast_chart(hours: Sequence[datetime], mean: Sequence[float], low: Sequence[float], high: Sequence[float],
                   history_hours: Sequence[datetime], history: Sequence[float], title: str) -> str:
    """The last days of observed hourly volume, then the forecast with its interval."""
    with plt.rc_context(STYLE):
        figure, axis = plt.subplots(figsize=(8.0, 2.4))
        if history_hours:
            axis.plot(history_hours, history, color="#718096", linewidth=0.8, label="osservato")
        axis.fill_between(hours, low, high, color=ACCENT, alpha=0.2, step="mid", label="intervallo")
        axis.plot(hours, mean, color=ACCENT, linewidth=1.2, label="previsione")
        axis.xaxis.set_major_formatter(mdates.DateFormatter("%d/%m"))
        axis.set_ylabel("post all'ora")
        axis.legend(loc="upper left", fontsize=7, frameon=False, ncols=3)
        axis.set_title(title, loc="left")
        return _svg(figure)
