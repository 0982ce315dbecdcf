# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · Performance reports
#
# Usage over time (to justify the cost), accuracy over time, by model version, by confidence and
# by class (to see how the latest model does against the previous one), and the share of
# transactions evaluated: each a table and a 16:9 figure whose title states the finding, with one
# colour per model version throughout. `export_deck` writes them all (PNG, SVG, PDF, CSV and a
# one-page summary) into `reports/`.
#
# Reports read only the transaction log and run metadata: they rebuild on a laptop without
# TensorFlow. On the sample, simulated traffic (clearly flagged as simulated in the log and on the
# slides) gives them a story: the model versions that were really promoted, over several weeks, with
# manual evaluations for a share of the requests. A run the gate refused never serves, so it never
# appears. On the README's path `make demo` has already simulated that traffic and it is not
# simulated twice; on a fresh sample this notebook simulates it. From a shell:
# `imgcls report --workspace PATH`.

# %% tags=["parameters"]
WORKSPACE = ""                      # your project folder; empty: the zoo sample
SAMPLE_DIR = "../demo-workspace"
SAMPLE_IMAGE_SIZE = 64
SAMPLE_POOL_SIZE = 3000
CUTOFF = 40
SIMULATE_WEEKS = 8                  # simulated traffic on the sample (0: none)
SIMULATE_REQUESTS = 2000
FREQ = "week"                       # "day", "week" or "month"

# %%
# %matplotlib inline
import warnings
warnings.filterwarnings("ignore", category=UserWarning)
import pandas as pd
from IPython.display import display
pd.set_option("display.max_columns", 30)
pd.set_option("display.width", 160)

# %%
from imgcls.core import open_workspace
from imgcls.sample import build_sample

# The zoo sample unless WORKSPACE names your own project folder.
ws = (open_workspace(WORKSPACE) if WORKSPACE
      else build_sample(SAMPLE_DIR, image_size=SAMPLE_IMAGE_SIZE, pool_size=SAMPLE_POOL_SIZE, overwrite=True))
ws = ws.with_cutoff(CUTOFF)
ws

# %% [markdown]
# ## Simulated traffic (the zoo sample only)
# Only for the runs ever promoted to production (the promotions log), and only once per workspace.

# %%
from imgcls.runs import promoted_run_ids
from imgcls.demo import simulate_traffic
from imgcls.demo.traffic import SIMULATED_SOURCE
from imgcls.translog import TransactionLog
promoted = promoted_run_ids(ws)[-2:]
with TransactionLog(ws) as log:   # weeks of simulated traffic, not notebook 07's few demo requests
    simulated = int((log.transactions(columns=["source"])["source"] == SIMULATED_SOURCE).sum()) if log.count() else 0
if not ws.sample_labels_file.exists() or not SIMULATE_WEEKS:
    print("No traffic simulated: the reports read your own log.")
elif simulated:
    print(f"The log already holds {simulated} simulated requests (from make demo): none added.")
elif not promoted:
    print("No run was ever promoted: there is nothing to serve (run notebook 03 first).")
else:
    print(f"Simulating {SIMULATE_REQUESTS} requests over {SIMULATE_WEEKS} weeks for the promoted runs: "
          + ", ".join(promoted))
    simulate_traffic(ws, runs=promoted, weeks=SIMULATE_WEEKS, requests=SIMULATE_REQUESTS, seed=0)

# %% [markdown]
# ## Every report

# %%
from imgcls.reports import build_figures, build_tables, export_deck
tables = build_tables(ws, freq=FREQ)
figures = build_figures(tables)
list(tables)

# %% [markdown]
# **Usage over time**: how many predictions were served per period, the number that justifies the
# running cost (simulated requests are counted and marked as such).

# %%
display(tables["usage_over_time"].tail())
figures["usage_over_time"]

# %% [markdown]
# **Accuracy by model version**: the share of evaluated predictions each promoted version got right,
# with n, so the latest model can be judged against the previous one.

# %%
display(tables["accuracy_by_version"])
figures["accuracy_by_version"]

# %% [markdown]
# **Accuracy over time**: the same share per period and version; periods with too few evaluations
# (or only partly covered) are drawn faded and never used in the headline.

# %%
figures["accuracy_over_time"]

# %% [markdown]
# **Accuracy by confidence**: how often a prediction was right at each confidence score, i.e.
# whether a high score can be trusted.

# %%
figures["accuracy_by_confidence"]

# %% [markdown]
# **Accuracy by predicted class**: when the model says a class, how often it is right (precision
# per class); the weakest classes are where labelling pays off first.

# %%
figures["accuracy_by_predicted_class"]

# %% [markdown]
# **Accuracy by true class**: of the images that really were a class, how many the model named
# correctly (recall per class); a class the model does not know yet scores zero here.

# %%
figures["accuracy_by_true_class"]

# %% [markdown]
# **Evaluated share**: the share of served predictions a person checked; every accuracy above
# rests on these evaluations, so a small share means wide uncertainty.

# %%
figures["evaluated_share"]

# %% [markdown]
# **Failed requests**: requests the server refused or could not answer, by reason (bad uploads,
# limits), so a rise in failures is seen before users complain.

# %%
figures["failed_requests"]

# %% [markdown]
# **Summary**: the deck's first page, the headline numbers of every slide above on one page.

# %%
figures["summary"]

# %% [markdown]
# ## Export the deck
# Every slide above as PNG, SVG and PDF, each table as CSV, and a one-page summary.

# %%
written = export_deck(ws, freq=FREQ)
print(f"{len(written)} files written under {ws.reports}")
written.head(12)
