"""Tests for imgcls.evaluation.metrics: every metric checked by hand on tiny examples (no model)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imgcls import evaluation as ev

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


def test_top_k_accuracy_and_labels_by_hand():
    assert ev.top_k_accuracy(Y_TRUE, SCORES, CLASSES, top_k=1) == pytest.approx(4 / 6)
    assert ev.top_k_accuracy(Y_TRUE, SCORES, CLASSES, top_k=2) == pytest.approx(1.0)
    assert ev.top_k_accuracy(["a", "b"], [[0.05, 0.8, 0.15], [0.1, 0.3, 0.6]], CLASSES, top_k=2) == pytest.approx(0.5)
    # Ties go in the model's favour: b ties a at the top.
    assert ev.top_k_accuracy(["b"], [[0.4, 0.4, 0.2]], CLASSES, top_k=1) == 1.0
    # A DataFrame with the columns in another order is reordered by name.
    df = pd.DataFrame(SCORES, columns=CLASSES)[["c", "a", "b"]]
    assert ev.top_k_accuracy(Y_TRUE, df, CLASSES, top_k=1) == pytest.approx(4 / 6)
    names, values = ev.top_k_labels(SCORES, CLASSES, top_k=2)
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
    out = ev.metrics_from_scores(Y_TRUE, SCORES, CLASSES, top_k=2)
    s = out["summary"]
    assert s["n"] == 6 and s["k"] == 2
    assert s["accuracy"] == pytest.approx(4 / 6) and s["top_k_accuracy"] == pytest.approx(1.0)
    assert s["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert out["confusion"].values.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert set(out) == {"summary", "per_class", "confusion", "confused_pairs", "calibration"}
