"""Tests for imgcls.evaluation: metrics by hand, run evaluation, comparison, the deploy gate.

The runs used by the gate are real run folders holding real Keras models whose
behaviour is set by hand (their weights map an image's colour to a chosen
class), so their benchmark accuracy is known exactly without training.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgcls import evaluation as ev
from imgcls.core import open_workspace
from imgcls.library import Library, assign_splits, choose_benchmark
from imgcls.runs import PROMOTIONS_FILE, production_run, promotion_log

# =========================================================================== pure metrics
# A tiny known example: 6 images, 3 classes.
#   true:  a a a b b c
#   pred:  a a b b c c
Y_TRUE = ["a", "a", "a", "b", "b", "c"]
Y_PRED = ["a", "a", "b", "b", "c", "c"]
CLASSES = ["a", "b", "c"]


def test_confusion_matrix_by_hand():
    cm = ev.confusion_matrix(Y_TRUE, Y_PRED, CLASSES)
    assert cm.index.name == "true" and cm.columns.name == "predicted"
    assert cm.values.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert list(cm.index) == CLASSES and list(cm.columns) == CLASSES


def test_per_class_precision_recall_f1_support_by_hand():
    pc = ev.per_class_metrics(Y_TRUE, Y_PRED, CLASSES)
    # a: 2 of 2 predicted a are right; 2 of 3 true a found.
    assert pc.loc["a", "precision"] == pytest.approx(1.0)
    assert pc.loc["a", "recall"] == pytest.approx(2 / 3)
    assert pc.loc["a", "f1"] == pytest.approx(0.8)
    # b: predicted twice (1 right); 2 true b, 1 found.
    assert pc.loc["b", ["precision", "recall", "f1"]].tolist() == pytest.approx([0.5, 0.5, 0.5])
    # c: predicted twice (1 right); its only image found.
    assert pc.loc["c", ["precision", "recall", "f1"]].tolist() == pytest.approx([0.5, 1.0, 2 / 3])
    assert pc["support"].tolist() == [3, 2, 1]
    assert pc["predicted"].tolist() == [2, 2, 2]
    assert ev.accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)


def test_per_class_zero_division():
    pc = ev.per_class_metrics(["a", "a"], ["a", "a"], ["a", "b"])
    assert pc.loc["b", ["precision", "recall", "f1", "support"]].tolist() == [0.0, 0.0, 0.0, 0]
    pc = ev.per_class_metrics(["a", "a"], ["a", "a"], ["a", "b"], zero_division=float("nan"))
    assert pc.loc["b", ["precision", "recall", "f1"]].isna().all()


def test_labels_outside_classes_are_named():
    with pytest.raises(ValueError, match=r"not in `classes`: \['zebra'\]"):
        ev.confusion_matrix(["a", "zebra"], ["a", "a"], ["a", "b"])
    with pytest.raises(ValueError, match="same length"):
        ev.confusion_matrix(["a"], ["a", "b"], ["a", "b"])


SCORES = np.array([
    # a     b     c          true  top-1  rank of true
    [0.90, 0.05, 0.05],  # a     a      1
    [0.60, 0.30, 0.10],  # a     a      1
    [0.30, 0.45, 0.25],  # a     b      2
    [0.20, 0.70, 0.10],  # b     b      1
    [0.05, 0.40, 0.55],  # b     c      2
    [0.10, 0.35, 0.55],  # c     c      1
])


def test_top_k_accuracy_by_hand():
    assert ev.top_k_accuracy(Y_TRUE, SCORES, CLASSES, k=1) == pytest.approx(4 / 6)
    assert ev.top_k_accuracy(Y_TRUE, SCORES, CLASSES, k=2) == pytest.approx(1.0)
    assert ev.top_k_accuracy(["a", "b"], [[0.05, 0.8, 0.15], [0.1, 0.3, 0.6]], CLASSES, k=2) == pytest.approx(0.5)
    # Ties go in the model's favour: b ties a at the top.
    assert ev.top_k_accuracy(["b"], [[0.4, 0.4, 0.2]], CLASSES, k=1) == 1.0
    # A DataFrame with the columns in another order is reordered by name.
    df = pd.DataFrame(SCORES, columns=CLASSES)[["c", "a", "b"]]
    assert ev.top_k_accuracy(Y_TRUE, df, CLASSES, k=1) == pytest.approx(4 / 6)
    names, values = ev.top_k(SCORES, CLASSES, k=2)
    assert names[2].tolist() == ["b", "a"] and values[2].tolist() == [0.45, 0.30]
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        ev.top_k_accuracy(Y_TRUE, SCORES[:, :2], CLASSES)


def test_most_confused_pairs_by_hand():
    y_true = ["a", "a", "b", "b", "b", "c", "c", "c", "c"]
    y_pred = ["b", "a", "a", "a", "b", "c", "b", "c", "c"]
    pairs = ev.most_confused_pairs(y_true, y_pred, CLASSES)
    # (a, b): 1 a taken for b, 2 b taken for a -> 3 of 5 images.
    # (b, c): 0 b taken for c, 1 c taken for b -> 1 of 7 images.
    assert pairs[["class_a", "class_b", "a_as_b", "b_as_a", "count"]].values.tolist() == [
        ["a", "b", 1, 2, 3], ["b", "c", 0, 1, 1]]
    assert pairs["rate"].tolist() == pytest.approx([3 / 5, 1 / 7])
    assert len(ev.most_confused_pairs(y_true, y_pred, CLASSES, top=1)) == 1
    assert ev.most_confused_pairs(["a"], ["a"], CLASSES).empty


def test_calibration_table_by_hand():
    cal = ev.calibration_table(Y_TRUE, SCORES, CLASSES, bins=(0.0, 0.5, 0.8, 1.0))
    # confidences: .90 (right) .60 (right) .45 (wrong) .70 (right) .55 (wrong) .55 (right)
    assert cal["bucket"].tolist() == ["0.00-0.50", "0.50-0.80", "0.80-1.00"]
    assert cal["n"].tolist() == [1, 4, 1]
    assert cal["accuracy"].tolist() == pytest.approx([0.0, 0.75, 1.0])
    assert cal["mean_confidence"].tolist() == pytest.approx([0.45, (0.6 + 0.7 + 0.55 + 0.55) / 4, 0.9])
    expected_ece = (1 * 0.45 + 4 * abs(0.75 - 0.6) + 1 * 0.1) / 6
    assert ev.expected_calibration_error(cal) == pytest.approx(expected_ece)
    # Empty buckets are kept with NaN accuracy; a confidence of exactly 1.0 lands in the last one.
    cal = ev.calibration_table(["a"], [[1.0, 0.0, 0.0]], CLASSES, bins=4)
    assert cal["n"].tolist() == [0, 0, 0, 1] and cal["accuracy"].isna().tolist() == [True] * 3 + [False]
    with pytest.raises(ValueError, match="bins"):
        ev.calibration_table(Y_TRUE, SCORES, CLASSES, bins=(0.5, 0.2))


def test_metrics_from_scores_bundle():
    out = ev.metrics_from_scores(Y_TRUE, SCORES, CLASSES, k=2)
    s = out["summary"]
    assert s["n"] == 6 and s["k"] == 2
    assert s["accuracy"] == pytest.approx(4 / 6) and s["top_k_accuracy"] == pytest.approx(1.0)
    assert s["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert out["confusion"].values.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert set(out) == {"summary", "per_class", "confusion", "confused_pairs", "calibration"}


# =========================================================================== runs with known behaviour
COLORS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200), "yellow": (200, 200, 40)}
# Columns of a layer that scores each colour (input: mean R, G, B).
_COLOR_W = np.array([
    # red   green  blue  yellow
    [1.0, -1.0, -0.5, 0.5],   # R
    [-1.0, 1.0, -0.5, 0.5],   # G
    [0.0, 0.0, 1.0, -1.0],    # B
], dtype=np.float32)
_COLOR_ORDER = list(COLORS)


def _color_model(classes, behaviour):
    """A real Keras model: mean colour -> true colour -> ``behaviour[colour]`` (a class)."""
    import keras

    inp = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(inp)
    x = keras.layers.Dense(4, name="colour")(x)
    x = keras.layers.Activation("softmax", name="colour_softmax")(x)
    out = keras.layers.Dense(len(classes), activation="softmax", name="predictions")(x)
    model = keras.Model(inp, out, name="colour_net")
    model.get_layer("colour").set_weights([_COLOR_W * 0.2, np.zeros(4, np.float32)])
    m = np.zeros((4, len(classes)), np.float32)
    for i, colour in enumerate(_COLOR_ORDER):
        if colour in behaviour:
            m[i, classes.index(behaviour[colour])] = 10.0
    model.get_layer("predictions").set_weights([m, np.zeros(len(classes), np.float32)])
    return model


@pytest.fixture(scope="module")
def gate_ws(tmp_path_factory):
    """Library: 4 colour classes x 12 images (32x32), 5 benchmark images each."""
    root = tmp_path_factory.mktemp("gate")
    ws = open_workspace(root / "ws", cutoff=5)
    rng = np.random.default_rng(0)
    for name, rgb in COLORS.items():
        folder = ws.library / name
        folder.mkdir(parents=True)
        for i in range(12):
            px = np.clip(np.array(rgb) + rng.normal(0, 12, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(px).save(folder / f"{name}_{i:02d}.png")
    lib = Library(ws)
    lib.scan()
    choose_benchmark(lib, per_class=5)
    return ws


def _save(ws, name, classes, behaviour, *, throwaway=False):
    from imgcls.runs import save_run

    cat = assign_splits(Library(ws).scan())
    snap = cat[cat["label"].isin(classes)]
    return save_run(ws, _color_model(classes, behaviour), classes=classes, splits=snap,
                    config={"model": "colour_net"}, run_id=name, throwaway=throwaway)


THREE = ["blue", "green", "red"]
GOOD3 = {"red": "red", "green": "green", "blue": "blue"}
BLUE_AS_RED = {"red": "red", "green": "green", "blue": "red"}        # 10/15 on the benchmark
GREEN_AS_BLUE = {"red": "red", "green": "blue", "blue": "blue"}     # 10/15, but green drops
ALL_RED = {"red": "red", "green": "red", "blue": "red"}             # 5/15


@pytest.fixture(scope="module")
def runs(gate_ws):
    four = ["blue", "green", "red", "yellow"]
    return {
        "good": _save(gate_ws, "good", THREE, GOOD3),
        "blue_as_red": _save(gate_ws, "blue_as_red", THREE, BLUE_AS_RED),
        "green_as_blue": _save(gate_ws, "green_as_blue", THREE, GREEN_AS_BLUE),
        "all_red": _save(gate_ws, "all_red", THREE, ALL_RED),
        "good_throwaway": _save(gate_ws, "good_throwaway", THREE, GOOD3, throwaway=True),
        "good4": _save(gate_ws, "good4", four, {c: c for c in four}),
    }


def _reset_gate(ws):
    ws.production_file.unlink(missing_ok=True)
    (ws.runs / PROMOTIONS_FILE).unlink(missing_ok=True)


def test_predict_table_on_benchmark(gate_ws, runs):
    table = ev.predict_table(runs["blue_as_red"], gate_ws, split="benchmark", k=2)
    assert len(table) == 15 and set(table["split"]) == {"benchmark"}
    assert {"path", "label", "predicted", "confidence", "correct", "true_score",
            "top1_class", "top1_score", "top2_class", "top2_score", "in_top_k"} <= set(table.columns)
    blue = table[table["label"] == "blue"]
    assert (blue["predicted"] == "red").all() and (~blue["correct"]).all()
    assert table.loc[table["label"] != "blue", "correct"].all()
    assert (table["top1_score"] >= table["top2_score"]).all()
    assert table["confidence"].between(0, 1).all()
    # Yellow is not a class of this run, so its benchmark images are not used.
    assert "yellow" not in set(table["label"])


def test_evaluate_known_model(gate_ws, runs):
    out = ev.evaluate(runs["blue_as_red"], gate_ws, split="benchmark")
    s = out["summary"]
    assert s["n"] == 15 and s["accuracy"] == pytest.approx(10 / 15)
    assert s["top_k_accuracy"] == pytest.approx(1.0)  # k=3 of 3 classes
    pc = out["per_class"]
    assert pc.loc["blue", "recall"] == 0 and pc.loc["red", "precision"] == pytest.approx(0.5)
    assert out["confusion"].loc["blue", "red"] == 5
    top = out["confused_pairs"].iloc[0]
    assert (top["class_a"], top["class_b"], top["count"]) == ("blue", "red", 5)
    assert out["calibration"]["n"].sum() == 15
    # Test split of the run's snapshot (hash-based, so some images of each class).
    test = ev.evaluate(runs["good"], gate_ws, split="test", save=True)
    assert test["summary"]["accuracy"] == 1.0
    assert runs["good"].metrics["test"]["accuracy"] == 1.0
    with pytest.raises(ValueError, match="split"):
        ev.evaluate(runs["good"], gate_ws, split="holdout")


def test_plots_are_slides(gate_ws, runs):
    out = ev.evaluate(runs["blue_as_red"], gate_ws, split="benchmark")
    for plot in (ev.plot_confusion, ev.plot_per_class, ev.plot_confused_pairs, ev.plot_calibration):
        fig = plot(out)
        w, h = fig.get_size_inches()
        assert w / h == pytest.approx(16 / 9, rel=0.01)
        from matplotlib.text import Text

        headline = [t for t in fig.findobj(Text) if t.get_text() and t.get_text() == fig.get_suptitle()]
        assert headline and headline[0].get_fontsize() >= 20
        assert "blue_as_red" in fig.axes[0].get_title(loc="left")  # the context line
    assert "blue taken for red" in ev.plot_confusion(out).get_suptitle()
    assert "blue" in ev.plot_per_class(out).get_suptitle()


def test_compare_runs_on_the_intersection(gate_ws, runs):
    cmp = ev.compare_runs([runs["good"], runs["blue_as_red"], runs["good4"]], gate_ws)
    s = cmp["summary"].set_index("run_id")
    assert cmp["common_classes"] == THREE
    assert "yellow" in cmp["note"]
    assert s.loc["good", "accuracy"] == 1.0 and s.loc["blue_as_red", "accuracy"] == pytest.approx(10 / 15)
    assert s.loc["good4", "n_images"] == 20 and s.loc["good4", "n_common"] == 15
    assert s.loc["good4", "accuracy_common"] == 1.0
    pc = cmp["per_class"]
    assert pc.loc["blue", "blue_as_red"] == 0 and pd.isna(pc.loc["yellow", "good"])
    assert pc.loc["yellow", "good4"] == 1.0 and pc.loc["blue", "support"] == 5
    fig = ev.plot_comparison(cmp, labels={"good": "gen 1"})
    assert fig.get_suptitle().startswith("gen 1 and good4 tie") and "yellow" in fig.axes[0].get_title(loc="left")
    lead = ev.compare_runs([runs["blue_as_red"], runs["good"]], gate_ws)
    assert ev.plot_comparison(lead).get_suptitle().replace("\n", " ").startswith("good leads by 33.3 points")


def test_gate_first_promotion_and_pointer(gate_ws, runs):
    _reset_gate(gate_ws)
    assert production_run(gate_ws) is None
    result = ev.promote(runs["blue_as_red"], gate_ws, reason="first model")
    assert result.accepted and bool(result)
    assert "No run is in production" in result.explain()
    pointer = json.loads(gate_ws.production_file.read_text())
    assert {"run_id", "promoted_at", "reason", "benchmark_accuracy"} <= set(pointer)
    assert pointer["run_id"] == "blue_as_red" and pointer["reason"] == "first model"
    assert pointer["benchmark_accuracy"] == pytest.approx(10 / 15)
    assert production_run(gate_ws).run_id == "blue_as_red"


def test_gate_refuses_worse_and_accepts_better(gate_ws, runs):
    _reset_gate(gate_ws)
    ev.promote(runs["blue_as_red"], gate_ws, reason="baseline")
    worse = ev.promote(runs["all_red"], gate_ws, reason="try all-red")
    assert not worse.accepted
    assert worse.candidate_accuracy == pytest.approx(5 / 15)
    assert worse.production_accuracy == pytest.approx(10 / 15)
    assert any("below production" in r for r in worse.reasons)
    assert production_run(gate_ws).run_id == "blue_as_red"
    with pytest.raises(ev.PromotionRefused, match="Refused to promote 'all_red'") as info:
        ev.promote(runs["all_red"], gate_ws, raise_on_refusal=True)
    assert info.value.result.accepted is False and isinstance(info.value, ValueError)

    better = ev.promote(runs["good"], gate_ws, reason="fixes blue")
    assert better.accepted and better.delta == pytest.approx(5 / 15)
    assert production_run(gate_ws).run_id == "good"
    pointer = json.loads(gate_ws.production_file.read_text())
    assert pointer["previous_run_id"] == "blue_as_red" and pointer["reason"] == "fixes blue"

    # A margin the candidate does not clear is refused even when it is not worse.
    again = ev.promote(runs["good4"], gate_ws, margin=0.01)
    assert not again.accepted and "margin" in again.explain()
    log = promotion_log(gate_ws)
    assert log["run_id"].tolist() == ["blue_as_red", "all_red", "all_red", "good", "good4"]
    assert log["accepted"].tolist() == [True, False, False, True, False]
    assert log["time"].notna().all() and log.loc[3, "reason"] == "fixes blue"


def test_gate_per_class_drop(gate_ws, runs):
    _reset_gate(gate_ws)
    ev.promote(runs["blue_as_red"], gate_ws)
    # Same overall accuracy (10/15) but green falls from 100% to 0%.
    res = ev.promote(runs["green_as_blue"], gate_ws)
    assert not res.accepted
    assert res.candidate_accuracy == pytest.approx(res.production_accuracy)
    assert any("green 100% -> 0%" in r for r in res.reasons)
    drops = res.per_class.set_index("class")["drop"]
    assert drops["green"] == pytest.approx(1.0) and drops["blue"] == pytest.approx(-1.0)
    assert ev.promote(runs["green_as_blue"], gate_ws, max_class_drop=None).accepted


def test_gate_never_promotes_throwaway(gate_ws, runs):
    _reset_gate(gate_ws)
    res = ev.promote(runs["good_throwaway"], gate_ws, reason="it is great")
    assert not res.accepted and "throw-away" in res.explain()
    assert res._repr_markdown_().startswith("**Refused to promote `good_throwaway`.**")
    assert not gate_ws.production_file.exists()
    ev.promote(runs["all_red"], gate_ws)
    assert not ev.promote(runs["good_throwaway"], gate_ws).accepted
    assert production_run(gate_ws).run_id == "all_red"
    log = promotion_log(gate_ws)
    assert log["accepted"].tolist() == [False, True, False]
    assert log.loc[0, "reason"] == "it is great"


def test_gate_different_class_lists_say_so(gate_ws, runs):
    _reset_gate(gate_ws)
    ev.promote(runs["good"], gate_ws)
    res = ev.promote(runs["good4"], gate_ws)
    assert res.accepted
    assert res.compared_classes == THREE and res.n_images == 15
    assert res.benchmark_accuracy == 1.0
    assert any("yellow" in n and "3 classes" in n for n in res.notes)
    with pytest.raises(ValueError, match="margin"):
        ev.promote(runs["good"], gate_ws, margin=5)


def test_evaluate_custom_rows_with_unknown_class_and_bad_file(gate_ws, runs, tmp_path):
    cat = Library(gate_ws).scan()
    pick = pd.concat([cat[cat["label"] == "red"].head(2), cat[cat["label"] == "yellow"].head(1)])
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    rows = pd.concat([pick[["path", "label"]], pd.DataFrame({"path": [str(bad)], "label": ["red"]})])
    out = ev.evaluate(runs["good"], gate_ws, rows=rows)
    s = out["summary"]
    assert out["split"] == "custom"
    assert s["n"] == 3 and s["n_skipped"] == 1 and s["n_unknown_class"] == 1
    assert s["accuracy"] == pytest.approx(2 / 3)  # the yellow image cannot be right
    assert out["skipped"]["path"].tolist() == [str(bad)]
    table = out["predictions"]
    assert table.loc[table["label"] == "yellow", "true_score"].isna().all()
    assert out["per_class"]["support"].sum() == 2
