"""The experiments' figures: the grid's, as the paper's Figure 3 (a heatmap and two line charts), and the TPE search's.

Drawn with matplotlib's Agg canvas directly (no ``pyplot``), so it works without
a display and leaves the user's own backend alone.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any, Sequence

from ..metrics import lower_is_better
from .tables import write_atomic


def grid_figure(
    rows: Sequence[dict[str, Any]],
    scale1s: Sequence[float],
    strengths: Sequence[float],
    key: str,
    best: int | None,
    path: str | os.PathLike,
    *,
    title: str = "",
) -> Path:
    """Draw the grid to a PNG at ``path`` (atomically).

    Left: the test ``key`` (mean over seeds) of every cell, strength down and
    scale1 across, each cell also showing its mean validation loss, the best
    cell outlined. Middle: ``key`` against strength at
    the best cell's scale1 (the paper's strength curve). Right: ``key`` against
    scale1 at the best cell's strength (the scale curve). The line charts carry
    the std over seeds as error bars and the mean validation loss, the quantity
    that chose the best cell, on a second axis.

    Args:
        rows: one flat row per cell with ``scale1``, ``strength``,
            ``<key>_mean``, ``<key>_std`` and ``valid_loss_mean``.
        best: index of the best row (``None`` when every cell failed).
    """
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    cell = {(float(r["scale1"]), float(r["strength"])): r for r in rows}
    values = np.full((len(strengths), len(scale1s)), np.nan)
    for i, strength in enumerate(strengths):
        for j, scale1 in enumerate(scale1s):
            values[i, j] = _value(cell.get((float(scale1), float(strength)), {}).get(f"{key}_mean"))

    figure = Figure(figsize=(15, 4.8), dpi=90, layout="constrained")
    FigureCanvasAgg(figure)
    heat, by_strength, by_scale = figure.subplots(1, 3, width_ratios=[1.15, 1, 1])
    cmap = colormaps["viridis_r" if lower_is_better(key) else "viridis"].with_extremes(bad="#d0d0d0")
    image = heat.imshow(np.ma.masked_invalid(values), cmap=cmap, aspect="auto")
    figure.colorbar(image, ax=heat, label=f"test {key}")
    heat.set_xticks(range(len(scale1s)), [f"{v:g}" for v in scale1s])
    heat.set_yticks(range(len(strengths)), [f"{v:g}" for v in strengths])
    heat.set_xlabel("scale1")
    heat.set_ylabel("strength")
    heat.set_title(f"test {key} (mean over seeds)\nred box: lowest validation loss", fontsize=10)
    finite = values[np.isfinite(values)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for i, strength in enumerate(strengths):
        for j, scale1 in enumerate(scale1s):
            v = values[i, j]
            loss = _value(cell.get((float(scale1), float(strength)), {}).get("valid_loss_mean"))
            dark = np.isfinite(v) and ((v < middle) != lower_is_better(key))
            text = "failed" if not np.isfinite(v) else f"{v:.3f}\nval {loss:.3f}"
            heat.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")

    best_row = rows[best] if best is not None else None
    if best_row is not None:
        s1, st = float(best_row["scale1"]), float(best_row["strength"])
        bi, bj = [float(v) for v in strengths].index(st), [float(v) for v in scale1s].index(s1)
        heat.add_patch(Rectangle((bj - 0.5, bi - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.5))
        handles = _line_chart(by_strength, [cell.get((s1, float(v)), {}) for v in strengths], strengths, "strength",
                              key, st, f"strength curve at scale1 = {s1:g}")
        _line_chart(by_scale, [cell.get((float(v), st), {}) for v in scale1s], scale1s, "scale1", key, s1,
                    f"scale curve at strength = {st:g}")
        figure.legend(handles=handles, loc="outside lower right", ncols=len(handles), fontsize=9)
    else:
        for axes in (by_strength, by_scale):
            axes.text(0.5, 0.5, "no finished cell", ha="center", va="center", transform=axes.transAxes)
            axes.set_axis_off()
    if title:
        figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return write_atomic(path, buffer.getvalue())


def _value(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def _line_chart(axes, cells: list[dict], xs: Sequence[float], name: str, key: str, best_x: float, title: str) -> list:
    """One line chart through the best cell; the grid's values sit at even steps, as in the paper's table.

    Returns the legend handles.
    """
    x = list(range(len(xs)))
    y = [_value(c.get(f"{key}_mean")) for c in cells]
    err = [_value(c.get(f"{key}_std")) for c in cells]
    err = [0.0 if math.isnan(e) else e for e in err]
    handles = [axes.errorbar(x, y, yerr=err, marker="o", capsize=3, color="tab:blue", label=f"test {key} (± std)")]
    values = [float(v) for v in xs]
    if best_x in values:
        k = values.index(best_x)
        handles += axes.plot([k], [y[k]], marker="*", markersize=16, color="red", linestyle="none", label="best cell")
    axes.set_xlabel(name)
    axes.set_ylabel(f"test {key}", color="tab:blue")
    axes.set_xticks(x, [f"{v:g}" for v in xs])
    axes.set_title(title)
    axes.grid(alpha=0.3)
    loss_axes = axes.twinx()
    loss = [_value(c.get("valid_loss_mean")) for c in cells]
    handles += loss_axes.plot(x, loss, marker="s", linestyle="--", color="tab:orange",
                              label="mean validation loss (selects the best cell)")
    loss_axes.set_ylabel("mean validation loss", color="tab:orange")
    return handles


def search_figure(
    rows: Sequence[dict[str, Any]],
    space,
    key: str,
    best: int | None,
    path: str | os.PathLike,
    *,
    title: str = "",
) -> Path:
    """Draw a TPE search to a PNG at ``path`` (atomically).

    Left: every point tried, scale1 (log axis) across and strength up, coloured
    by the mean validation loss that TPE minimises (failed trials as grey
    crosses), the best point starred; the axes span the searched ranges.
    Right: the validation loss of each trial in trial order with the best so
    far as a step line, and the test ``key`` on a second axis (reported, never
    used to choose).

    Args:
        rows: one flat row per trial with ``trial``, ``scale1``, ``strength``,
            ``valid_loss_mean`` and ``<key>_mean``.
        space: the :class:`~snn_msa.experiments.search.SearchSpace` searched.
        best: index of the best row (``None`` when every trial failed).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    figure = Figure(figsize=(12, 4.8), dpi=90, layout="constrained")
    FigureCanvasAgg(figure)
    points, history = figure.subplots(1, 2)
    done = [r for r in rows if math.isfinite(_value(r.get("valid_loss_mean")))]
    failed = [r for r in rows if r not in done]
    if done:
        image = points.scatter([r["scale1"] for r in done], [r["strength"] for r in done],
                               c=[r["valid_loss_mean"] for r in done], cmap="viridis_r", s=60, edgecolors="black")
        figure.colorbar(image, ax=points, label="mean validation loss")
    if failed:
        points.scatter([r["scale1"] for r in failed], [r["strength"] for r in failed], marker="x", color="grey",
                       label="failed")
    if best is not None:
        points.plot([rows[best]["scale1"]], [rows[best]["strength"]], marker="*", markersize=18, color="red",
                    linestyle="none", label="best (lowest validation loss)")
    (x_low, x_high), (y_low, y_high) = space.scale1, space.strength
    points.set_xscale("log")
    points.set_xlim(x_low / 1.08, x_high * 1.08)  # a margin, so that points on the range's edge show whole
    points.set_ylim(y_low - 0.04 * (y_high - y_low), y_high + 0.04 * (y_high - y_low))
    points.add_patch(Rectangle((x_low, y_low), x_high - x_low, y_high - y_low, fill=False, linestyle="--",
                               edgecolor="grey", label="searched ranges"))
    points.xaxis.set_major_formatter(ScalarFormatter())
    points.xaxis.set_minor_formatter(ScalarFormatter())
    points.set_xlabel("scale1 (log-uniform)")
    points.set_ylabel("strength (uniform)")
    points.set_title("points tried", fontsize=10)
    points.legend(fontsize=8, loc="best")

    ordered = sorted(rows, key=lambda r: r["trial"])
    numbers = [r["trial"] for r in ordered]
    losses = [_value(r.get("valid_loss_mean")) for r in ordered]
    running, lowest = [], math.inf
    for loss in losses:
        lowest = min(lowest, loss) if math.isfinite(loss) else lowest
        running.append(lowest if math.isfinite(lowest) else math.nan)
    handles = history.plot(numbers, losses, marker="o", linestyle="none", color="tab:orange",
                           label="validation loss (TPE's objective)")
    handles += history.step(numbers, running, where="post", color="tab:orange", alpha=0.6, label="best so far")
    history.set_xlabel("trial")
    history.xaxis.set_major_locator(MaxNLocator(integer=True))
    history.set_ylabel("mean validation loss", color="tab:orange")
    history.grid(alpha=0.3)
    test_axes = history.twinx()
    handles += test_axes.plot(numbers, [_value(r.get(f"{key}_mean")) for r in ordered], marker="s", linestyle="none",
                              color="tab:blue", label=f"test {key} (reported only)")
    test_axes.set_ylabel(f"test {key}", color="tab:blue")
    history.set_title("by trial", fontsize=10)
    history.legend(handles=handles, fontsize=8, loc="best")
    if title:
        figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return write_atomic(path, buffer.getvalue())
