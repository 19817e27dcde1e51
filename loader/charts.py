"""The report's charts, drawn by matplotlib (the `report` extra) as static SVG: in-process, with no browser,
JavaScript engine or network, and no pyplot state. Each function returns one `<svg>` element, ready to be put
inline in an HTML page.

Readable without colour: the tiers are labelled in their bands, the reference lines differ in line style and the
reference points in shape, and the legends name them with their values. Text stays text (selectable, found by the
browser's search, read by screen readers): laid out with DejaVu Sans, which ships with matplotlib, and shown in it
where it is installed, else in a narrower sans-serif, so a label never outgrows its place.
"""
from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

TIERS = ("well_below", "below", "above", "well_above")
TIER_NAMES = {"well_below": "well below", "below": "below", "above": "above", "well_above": "well above"}
TIER_FILL = {"well_below": "#f4f7fb", "below": "#e4ecf6", "above": "#d2dfef", "well_above": "#bfd1e9"}
STYLE = {
    "text.parse_math": False,      # "$" is a dollar sign, never the start of a formula
    "svg.fonttype": "none",        # text as <text>, not as glyph outlines (a third of the size)
    "svg.hashsalt": "district-benchmarks",   # stable ids: the same data gives the same file
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Bitstream Vera Sans", "Verdana", "Arial", "Helvetica"],
    "font.size": 9,
    "figure.titlesize": 10,
    "figure.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
}


@dataclass(frozen=True)
class Marker:
    """A reference value drawn across a distribution: the district, or an average."""
    label: str            # legend text, value included ("Oregon average 25.87%")
    value: float
    style: str            # "district", "state", "national", "peers"


MARKER_LOOK = {  # line style first: the lines differ without colour
    "district": {"color": "#111111", "linestyle": "-", "linewidth": 2.6},
    "state": {"color": "#1f5fa8", "linestyle": (0, (5, 2)), "linewidth": 1.6},
    "national": {"color": "#555555", "linestyle": (0, (1, 1.5)), "linewidth": 1.8},
    "peers": {"color": "#b35900", "linestyle": (0, (6, 2, 1, 2)), "linewidth": 1.6},
}


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.get_layout_engine().set(h_pad=0.06, w_pad=0.06)
    return fig


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#555555")
    ax.set_yticks([])


def distribution(key: str, title: str, xlabel: str, values: Sequence[float], cutoffs: Mapping[str, float],
                 markers: Sequence[Marker], tick_format, empty_note: str, size: tuple[float, float] = (6.5, 2.8)) -> str:
    """A histogram of the districts' values over the tier bands (each labelled), with the markers as vertical
    lines named in the legend. `cutoffs`: the lowest value of each tier (none: no bands); `tick_format` formats a tick;
    `key` prefixes the SVG's ids (unique per chart in a page)."""
    with matplotlib.rc_context(STYLE):
        fig = _figure(*size)
        fig.suptitle(title, x=0.01, ha="left")
        ax = fig.add_subplot()
        ax.set_xlabel(xlabel)
        ax.set_ylabel("districts")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: tick_format(x)))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
        points = sorted(float(v) for v in values)
        shown = points + [m.value for m in markers]
        if not shown:
            _no_data(ax, empty_note)
            ax.set_xticks([])
            return _svg(fig, title, key)
        lo, hi = min(shown), max(shown)
        outside = ""
        if len(points) >= 20:
            # a few extreme values (a tiny district's spending) would squeeze everyone else into one bar: the axis
            # spans the 2nd to 98th percentile and the markers, and the values beyond it count in the edge bars
            p_lo, p_hi = points[len(points) // 50], points[-1 - len(points) // 50]
            bulk = p_hi - p_lo
            if bulk > 0 and (p_lo - points[0] > bulk or points[-1] - p_hi > bulk):
                if p_lo - points[0] > bulk:                    # clip only the side with a long tail
                    lo = min([p_lo] + [m.value for m in markers])
                if points[-1] - p_hi > bulk:
                    hi = max([p_hi] + [m.value for m in markers])
                n_lo, n_hi = sum(p < lo for p in points), sum(p > hi for p in points)
                points = [min(max(p, lo), hi) for p in points]
                outside = "; ".join(x for x in (f"{n_lo} below {tick_format(lo)} in the first bar" if n_lo else "",
                                                f"{n_hi} above {tick_format(hi)} in the last bar" if n_hi else "") if x)
        pad = (hi - lo) * 0.04 or max(abs(lo) * 0.05, 1.0)
        ax.set_xlim(lo - pad, hi + pad)
        if points:
            bins = max(8, min(30, round(math.sqrt(len(points)) * 2)))
            edges = _edges(min(points), max(points), bins)
            ax.hist(points, bins=edges, color="#7b8794", edgecolor="white", linewidth=0.6, zorder=2,
                    label=None)
            ax.margins(y=0.25)   # room for the band labels above the tallest bar
        else:
            _no_data(ax, empty_note)
        if outside:
            ax.text(0.99, 0.80, outside, transform=ax.transAxes, ha="right", va="top", fontsize=7.5, zorder=5,
                    bbox={"facecolor": "white", "edgecolor": "#9aa5b1", "pad": 2.0})
        _tier_bands(ax, cutoffs)
        for m in markers:
            ax.axvline(m.value, zorder=3, label=m.label, **MARKER_LOOK[m.style])
        if markers:
            fig.legend(loc="outside right upper", handlelength=3.2)
        return _svg(fig, title, key)


def _edges(lo: float, hi: float, bins: int) -> list[float]:
    if hi <= lo:
        width = max(abs(lo) * 0.02, 0.5)
        return [lo - width, lo + width]
    step = (hi - lo) / bins
    return [lo + i * step for i in range(bins)] + [hi]


def _tier_bands(ax, lowest: Mapping[str, float]) -> None:
    present = [t for t in TIERS if t in lowest]
    if not present:
        return
    left, right = ax.get_xlim()
    width = right - left
    starts = [left] + [float(lowest[t]) for t in present[1:]]
    ends = starts[1:] + [right]
    for i, (t, a, b) in enumerate(zip(present, starts, ends)):
        ax.axvspan(a, b, color=TIER_FILL[t], zorder=0, linewidth=0)
        if i:
            ax.axvline(a, color="#6b7f99", linewidth=0.6, zorder=1)
        share = (b - a) / width
        if share >= 0.02:   # a band too narrow for any label is named in the page's text
            text = TIER_NAMES[t] if share >= 0.1 else TIER_NAMES[t].replace("well ", "w.\n")
            ax.text((a + b) / 2, 0.97 - 0.09 * (i % 2 if share < 0.1 else 0), text, transform=ax.get_xaxis_transform(),
                    ha="center", va="top", fontsize=7.5, color="#1d2a3a", zorder=5,
                    bbox={"facecolor": TIER_FILL[t], "edgecolor": "none", "pad": 1.0})   # over the lines, legible


def history(key: str, title: str, ylabel: str, series: Sequence[tuple[int, float]], references: Sequence[Marker],
            latest_year: int | None, value_format, tick_format, empty_note: str) -> str:
    """The district's value by school year (a line with its points), the latest value labelled; `references`
    (the averages of the latest year: state, national, peers) as points of distinct shapes at that year."""
    with matplotlib.rc_context(STYLE):
        fig = _figure(4.3, 3.1)
        fig.suptitle(title, x=0.01, ha="left")
        ax = fig.add_subplot()
        ax.set_xlabel("school year")
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: tick_format(y)))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=8))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: school_year(int(round(x)))))
        if not series:
            _no_data(ax, empty_note)
            ax.set_xticks([])
            return _svg(fig, title, key)
        years = [y for y, _ in series]
        vals = [float(v) for _, v in series]
        ax.plot(years, vals, color="#111111", marker="o", markersize=4, linewidth=1.8, label="this district", zorder=3)
        ax.annotate(value_format(vals[-1]), (years[-1], vals[-1]), xytext=(0, 7), textcoords="offset points",
                    ha="center", fontsize=8, zorder=4)
        at = latest_year if latest_year is not None else years[-1]
        shapes = {"state": "D", "national": "s", "peers": "^"}
        for i, ref in enumerate(references):
            look = MARKER_LOOK[ref.style]
            nudge = (i - (len(references) - 1) / 2) * 0.18    # side by side when the averages are close
            ax.plot([at + nudge], [ref.value], linestyle="none", marker=shapes.get(ref.style, "x"), markersize=6,
                    markerfacecolor="white", markeredgecolor=look["color"], markeredgewidth=1.5,
                    label=ref.label, zorder=4)
        first, last = min(years + [at]), max(years + [at])
        ax.set_xlim(first - 0.6, last + 0.6)
        ax.margins(y=0.2)
        fig.legend(loc="outside lower center", ncol=2, columnspacing=1.2, handletextpad=0.4)
        for label in ax.get_xticklabels():
            label.set_rotation(30)
        return _svg(fig, title, key)


def school_year(fall: int) -> str:
    """2019 → '2019-20' (the API's year is the fall of the school year)."""
    return f"{fall}-{(fall + 1) % 100:02d}"


_ID = re.compile(r'\bid="([^"]+)"')


def _svg(fig: Figure, title: str, key: str) -> str:
    """The figure as one `<svg>` element: no XML prologue, its ids prefixed with `key` (several charts share one
    page, and an id must be unique in it), labelled for screen readers by its title."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    ids = sorted(set(_ID.findall(text)), key=len, reverse=True)
    if ids:
        refs = re.compile(r'(id="|"#|\(#)(' + "|".join(map(re.escape, ids)) + r')(?=[")])')
        text = refs.sub(lambda m: f"{m.group(1)}{key}-{m.group(2)}", text)
    label = title.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return text.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)
