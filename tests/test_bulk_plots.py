"""The bulk-identification figures: a finding as the title, n in the subtitle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imgcls.bulk import plot_precision, plot_true_labels, precision_at_thresholds


def _title(fig) -> str:
    return fig._suptitle.get_text().replace("\n", " ")


def _subtitle(fig) -> str:
    return fig.axes[0].get_title(loc="left").replace("\n", " ")


def test_precision_slide_states_the_threshold_that_reaches_the_target():
    res = pd.DataFrame({"path": [f"/p/{i}.png" for i in range(20)],
                        "top1_class": ["cat"] * 20, "top1_score": np.linspace(0.05, 0.99, 20),
                        "true_label": ["dog"] * 10 + ["cat"] * 10})
    table = precision_at_thresholds(res, thresholds=[0.0, 0.5, 0.9])
    fig = plot_precision(table, run_id="r1")
    assert _title(fig) == "Accepting scores of 50% or more is 100% precise and covers 50% of the pool"
    assert "n = 20 pool images" in _subtitle(fig) and "r1" in _subtitle(fig)
    missed = plot_precision(table, target=1.01)
    assert _title(missed).startswith("No threshold reaches 101% precision: the best is 100%")


def test_look_alike_chart_says_what_the_filtered_images_really_are():
    look = pd.DataFrame({"top1_class": ["horse"] * 5, "true_label": ["zebra"] * 3 + ["horse", ""]})
    fig = plot_true_labels(look, predicted="horse")
    assert _title(fig) == "3 of 5 images predicted 'horse' here are really zebra"
    assert _subtitle(fig).startswith("n = 5 images")
    assert _title(plot_true_labels(look.iloc[:0], predicted="horse")).startswith("No image predicted 'horse'")
    with pytest.raises(ValueError, match="attach_truth"):
        plot_true_labels(look.drop(columns="true_label"), predicted="horse")
