"""Tests for imgcls.evaluation.plots: every plot is a 16:9 slide whose title states the finding."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from imgcls import evaluation as ev
from evaluation_runs import gate_runs, gate_workspace


@pytest.fixture(scope="module")
def gate_ws(tmp_path_factory):
    return gate_workspace(tmp_path_factory)


@pytest.fixture(scope="module")
def runs(gate_ws):
    return gate_runs(gate_ws)


def test_plots_are_slides(gate_ws, runs):
    out = ev.evaluate(runs["blue_as_red"], "benchmark", workspace=gate_ws)
    for plot in (ev.plot_confusion, ev.plot_per_class, ev.plot_confused_pairs, ev.plot_calibration):
        fig = plot(out)
        w, h = fig.get_size_inches()
        assert w / h == pytest.approx(16 / 9, rel=0.01)
        from matplotlib.text import Text

        headline = [t for t in fig.findobj(Text) if t.get_text() and t.get_text() == fig.get_suptitle()]
        assert headline and headline[0].get_fontsize() >= 20
        assert "blue_as_red" in fig.axes[0].get_title(loc="left")  # the context line
        assert "n=15" in fig.axes[0].get_title(loc="left")
    assert "blue taken for red" in ev.plot_confusion(out).get_suptitle()
    assert "5 of 5 blue images" in ev.plot_confusion(out).get_suptitle()
    assert "blue" in ev.plot_per_class(out).get_suptitle()


def test_plots_of_bare_tables_and_no_data():
    cm = ev.confusion_matrix(["a", "a", "b"], ["a", "b", "b"], ["a", "b"])
    fig = ev.plot_confusion(cm)
    assert "a taken for b (1 of 2 a images" in fig.get_suptitle()
    assert "n=3" in fig.axes[0].get_title(loc="left")
    none = ev.most_confused_pairs(["a"], ["a"], ["a", "b"])
    assert ev.plot_confused_pairs(none).get_suptitle() == "No look-alike classes: nothing was confused"


def test_plot_comparison_names_the_leader(gate_ws, runs):
    cmp = ev.compare_runs([runs["good"], runs["blue_as_red"], runs["good4"]], workspace=gate_ws)
    fig = ev.plot_comparison(cmp, labels={"good": "gen 1"})
    assert fig.get_suptitle().startswith("gen 1 and good4 tie") and "yellow" in fig.axes[0].get_title(loc="left")
    assert "n=15" in fig.axes[0].get_title(loc="left").replace("\n", " ")
    lead = ev.compare_runs([runs["blue_as_red"], runs["good"]], workspace=gate_ws)
    assert ev.plot_comparison(lead).get_suptitle().replace("\n", " ").startswith("good leads by 33.3 points")
