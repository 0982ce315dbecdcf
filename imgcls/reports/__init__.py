"""Reports: usage and accuracy of the served models, as tables and slide-ready figures (layer 6).

Everything here is computed from the transaction log (:mod:`imgcls.translog`)
and, for context, the plain JSON metadata of the runs that served
(``runs/<run_id>/config.json``, ``classes.json``, ``metrics.json``). Nothing
imports TensorFlow or Keras, so a report rebuilds on a laptop from a copy of
the workspace's ``serving.sqlite`` and ``runs/*/*.json``.

Each report is a function of a log ``source`` returning a DataFrame, and a
``plot_*`` function turning that DataFrame into a slide (the one slide style
of :mod:`imgcls.core.slides`) whose title states the finding::

    usage_over_time        requests per day / week / month and model version
    accuracy_over_time     accuracy of evaluated predictions per period and version
    accuracy_by_version    accuracy per model version (with offline test accuracy)
    accuracy_by_runtime    accuracy per model version and runtime (keras-f32, openvino-int8, ...)
    accuracy_by_confidence accuracy per top-1 confidence bucket (calibration-like)
    accuracy_by_class      accuracy per predicted class, or per true class where known
    evaluated_share        share of served predictions that were evaluated
    failed_requests        failed requests by kind (validation, auth, rate limit, overload, ...)
    summary_table          the headline numbers and every finding (and when data was purged)

:func:`load_report_data` reads the log once (pass its result to every report
to avoid reading again); :func:`build_tables` and :func:`build_figures` make
them all; :func:`export_deck` writes all figures (PNG, SVG, PDF), all tables
(CSV) and a one-page summary into ``<workspace>/reports/<UTC date>/``.

Accuracy counts one verdict per prediction: its *current* verdict, the last
one the log received.

No slide overclaims (:mod:`imgcls.reports.rules`, the one place for it, used
by every slide module): periods with fewer than :data:`MIN_JUDGED` judged
predictions and partial periods are faded and never in a headline, lines
break where there is no data, every headline states n, simulated traffic is
flagged on the slides.

Modules: ``data`` (reading the log and run metadata), ``periods`` (UTC days,
weeks, months), ``counts`` (accuracy and Wilson intervals), ``tables``,
``failures`` (failed requests by kind, the purge note), ``findings`` (the
sentence each figure and the summary state), ``rules`` (what a slide may claim), ``figures``, ``deck``;
``generations`` (the lineage report of the runs: family tree, generations,
training cost; :func:`lineage_report`) and ``generation_figures`` (its slides);
``noise`` (the label-noise table a label-issue scan stored in a run folder;
:func:`label_noise_report`) and ``noise_figures`` (its slide).
"""

from imgcls.reports.data import (
    ReportData,
    load_report_data,
    run_metadata,
    version_order,
)
from imgcls.reports.deck import export_deck
from imgcls.reports.failures import failed_requests
from imgcls.reports.figures import (
    build_figures,
    plot_accuracy_by_class,
    plot_accuracy_by_confidence,
    plot_accuracy_by_version,
    plot_accuracy_over_time,
    plot_evaluated_share,
    plot_failed_requests,
    plot_summary,
    plot_usage_over_time,
)
from imgcls.reports.generation_figures import (
    build_generation_figures,
    plot_generation_accuracy,
    plot_generation_cost,
)
from imgcls.reports.generations import (
    cost_table,
    experiment_ratio,
    generation_findings,
    generation_table,
    lineage_report,
)
from imgcls.reports.noise import MIN_NOISE_N, label_noise_report, noise_findings
from imgcls.reports.noise_figures import noise_deck, plot_label_noise
from imgcls.reports.periods import FREQS
from imgcls.reports.rules import (
    MIN_JUDGED,
    headline_rows,
    mark_reliable,
    n_text,
    reliable,
    simulated_note,
    too_few,
    with_gaps,
)
from imgcls.reports.runtimes import accuracy_by_runtime
from imgcls.reports.tables import (
    DEFAULT_CONFIDENCE_BUCKETS,
    accuracy_by_class,
    accuracy_by_confidence,
    accuracy_by_version,
    accuracy_over_time,
    build_tables,
    evaluated_share,
    summary_table,
    usage_over_time,
)

__all__ = [
    "FREQS",
    "MIN_JUDGED",
    "reliable",
    "mark_reliable",
    "headline_rows",
    "with_gaps",
    "n_text",
    "too_few",
    "simulated_note",
    "DEFAULT_CONFIDENCE_BUCKETS",
    "ReportData",
    "load_report_data",
    "run_metadata",
    "version_order",
    "usage_over_time",
    "accuracy_over_time",
    "accuracy_by_version",
    "accuracy_by_runtime",
    "accuracy_by_confidence",
    "accuracy_by_class",
    "evaluated_share",
    "failed_requests",
    "summary_table",
    "plot_usage_over_time",
    "plot_accuracy_over_time",
    "plot_accuracy_by_version",
    "plot_accuracy_by_confidence",
    "plot_accuracy_by_class",
    "plot_evaluated_share",
    "plot_failed_requests",
    "plot_summary",
    "build_tables",
    "build_figures",
    "export_deck",
    "lineage_report",
    "generation_table",
    "cost_table",
    "experiment_ratio",
    "generation_findings",
    "plot_generation_accuracy",
    "plot_generation_cost",
    "build_generation_figures",
    "MIN_NOISE_N",
    "label_noise_report",
    "noise_findings",
    "plot_label_noise",
    "noise_deck",
]
