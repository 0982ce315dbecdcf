"""Experiments behind the write-up's claims, measured by benchmarks/ (layer 6).

* the model bake-off: candidate models trained briefly side by side
  (:func:`bakeoff`, :func:`plot_bakeoff`);
* head swap vs from scratch for the zoo sample's generation 2
  (:func:`headswap_experiment` and the functions that summarise, judge, read
  and draw its results).
"""

from imgcls.core.quiet import start_tensorflow

start_tensorflow()  # before any TensorFlow import below: loads it without its start-up lines on stderr

from imgcls.experiments.bakeoff import BAKEOFF_COLUMNS, bakeoff
from imgcls.experiments.headswap import (
    DEFAULT_LABELLING,
    headswap_experiment,
    headswap_speed_table,
    headswap_verdict,
    read_headswap_benchmark,
    summarize_headswap,
)
from imgcls.experiments.lineage import (
    PLAN_COLUMNS,
    QUICK_LINEAGE,
    REDUCED_LINEAGE,
    lineage_experiment,
    lineage_plan,
)
from imgcls.experiments.lineage_plots import plot_lineage_accuracy, plot_lineage_compute, plot_lineage_epochs
from imgcls.experiments.lineage_table import (
    LINEAGE_COLUMNS,
    WRITEUP_LINEAGE,
    lineage_table,
    lineage_verdict,
    read_lineage_benchmark,
    run_record,
    summarize_lineage,
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
    "PLAN_COLUMNS",
    "QUICK_LINEAGE",
    "REDUCED_LINEAGE",
    "lineage_plan",
    "lineage_experiment",
    "LINEAGE_COLUMNS",
    "WRITEUP_LINEAGE",
    "run_record",
    "lineage_table",
    "summarize_lineage",
    "lineage_verdict",
    "read_lineage_benchmark",
    "plot_lineage_epochs",
    "plot_lineage_accuracy",
    "plot_lineage_compute",
]
