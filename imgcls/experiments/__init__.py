"""Experiments behind the write-up's claims, measured by benchmarks/ (layer 6).

* the model bake-off: candidate models trained briefly side by side
  (:func:`bakeoff`, :func:`plot_bakeoff`);
* head swap vs from scratch for generation 1 of the zoo sample
  (:func:`headswap_experiment` and the functions that summarise, judge, read
  and draw its results).
"""

from imgcls.experiments.bakeoff import BAKEOFF_COLUMNS, bakeoff
from imgcls.experiments.headswap import (
    DEFAULT_LABELLING,
    headswap_experiment,
    headswap_speed_table,
    headswap_verdict,
    read_headswap_benchmark,
    summarize_headswap,
)
from imgcls.experiments.plots import plot_bakeoff, plot_learning_curves

__all__ = [
    "BAKEOFF_COLUMNS",
    "bakeoff",
    "plot_bakeoff",
    "DEFAULT_LABELLING",
    "headswap_experiment",
    "summarize_headswap",
    "headswap_verdict",
    "headswap_speed_table",
    "read_headswap_benchmark",
    "plot_learning_curves",
]
