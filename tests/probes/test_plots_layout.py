"""The probe plots' layout: nothing overlaps, ticks only on captured layers, the 1%-FPR point is drawn, n/a is legible."""

from __future__ import annotations

import numpy as np
import pytest

from deception_probes import plots


def _cell(layer, position, method, value):
    return {"layer": layer, "position": position, "method": method,
            "auroc": {"value": value, "ci_low": value - 0.1, "ci_high": value + 0.1}}


@pytest.fixture()
def results():
    layers, positions, methods = [3, 7, 15], ["last_prompt", "reply_mean", "reply_last"], ["logistic", "lat", "mass_mean"]
    cells = [_cell(layer, p, m, 0.6 + 0.01 * layer) for layer in layers for p in positions for m in methods]
    transfer = {
        "mode": {"groups": ["emergent", "instructed"],
                 "cells": [{"train": a, "test": b, "auroc": None if (a, b) == ("instructed", "emergent") else {"value": 0.9}}
                           for a in ("emergent", "instructed") for b in ("emergent", "instructed")]},
        "incentive": {"groups": ["HIGH", "LOW"],
                      "cells": [{"train": a, "test": b, "auroc": {"value": 0.7}}
                                for a in ("HIGH", "LOW") for b in ("HIGH", "LOW")]},
    }
    return {"cells": cells, "dataset": {"layers": layers, "positions": positions},
            "best": {"method": "logistic", "layer": 7, "position": "reply_mean"}, "settings": {"fpr": 0.01},
            "generalisation": {"transfer": transfer, "method": "logistic", "layer": 7, "position": "reply_mean"}}


def _bbox(fig, artist):
    return artist.get_window_extent(fig.canvas.get_renderer())


def test_auroc_by_layer_ticks_only_captured_layers(results) -> None:
    fig = plots.auroc_by_layer_figure(results)
    for ax in fig.axes:
        assert list(ax.get_xticks()) == [3, 7, 15]


def test_auroc_by_layer_dodges_the_methods(results) -> None:
    fig = plots.auroc_by_layer_figure(results)
    xs = [tuple(np.round(line.get_xdata(), 6)) for line in fig.axes[1].lines if len(line.get_xdata()) == 3]
    assert len(set(x[0] for x in xs)) == 3  # three methods, three x positions at the first layer


def test_suptitle_clears_the_panel_titles(results) -> None:
    fig = plots.auroc_by_layer_figure(results)
    fig.canvas.draw()
    suptitle = _bbox(fig, fig._suptitle)
    for ax in fig.axes:
        assert suptitle.y0 >= _bbox(fig, ax.title).y1


def test_roc_draws_the_1_percent_fpr_point(results) -> None:
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(300), np.ones(300)]
    scores = y + rng.normal(0, 0.8, size=len(y))
    fig = plots.roc_best_figure(results, scores, y)
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    point = [line for line in fig.axes[0].lines if line.get_marker() == "o"]
    assert any(label.startswith("1% FPR target") for label in labels)
    assert len(point) == 1
    assert point[0].get_xdata()[0] <= 0.01


def test_transfer_na_is_dark_on_grey_and_labels_do_not_collide(results) -> None:
    fig = plots.transfer_figure(results)
    fig.canvas.draw()
    first, second = fig.axes[0], fig.axes[1]
    na = [t for t in first.texts if t.get_text() == "n/a"]
    assert len(na) == 1
    assert na[0].get_color() == plots.MISSING_TEXT_COLOUR
    second_labels = _bbox(fig, second.yaxis.label).x0
    first_right = max(_bbox(fig, first).x1, *(_bbox(fig, t).x1 for t in first.get_xticklabels()))
    assert second_labels > first_right
