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
# # 07 · Performance reports
#
# Usage over time (to justify the cost), accuracy over time, by model version, by confidence and
# by class (to see how the latest model does against the previous one), and the share of
# transactions evaluated: each a table and a 16:9 figure whose title states the finding, with one
# colour per model version throughout. `export_deck` writes them all (PNG, SVG, PDF, CSV and a
# one-page summary) into `reports/`.
#
# Reports read only the transaction log and run metadata: they rebuild on a laptop without
# TensorFlow. On the sample, simulated traffic (clearly flagged as simulated in the log) gives
# them a story: two model versions over several weeks, with manual evaluations for a share of
# the requests. From a shell: `imgcls report --workspace PATH`.

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
# Two model versions: the last two non-throw-away runs.

# %%
from imgcls.runs import list_runs
from imgcls.demo import simulate_traffic
from imgcls.translog import TransactionLog
runs = list_runs(ws)
keepers = list(runs.loc[~runs["throwaway"], "run_id"])[-2:] if len(runs) else []
with TransactionLog(ws) as log:
    simulated = int(log.transactions(columns=["simulated"])["simulated"].sum()) if log.count() else 0
if ws.sample_labels_file.exists() and SIMULATE_WEEKS and keepers and not simulated:
    simulate_traffic(ws, runs=keepers, weeks=SIMULATE_WEEKS, requests=SIMULATE_REQUESTS, seed=0)

# %% [markdown]
# ## Every report

# %%
from imgcls.reports import build_figures, build_tables, export_deck
tables = build_tables(ws, freq=FREQ)
figures = build_figures(tables)
list(tables)

# %%
display(tables["usage_over_time"].tail())
figures["usage_over_time"]

# %%
display(tables["accuracy_by_version"])
figures["accuracy_by_version"]

# %%
figures['accuracy_over_time']

# %%
figures['accuracy_by_confidence']

# %%
figures['accuracy_by_predicted_class']

# %%
figures['accuracy_by_true_class']

# %%
figures['evaluated_share']

# %% [markdown]
# ## Export the deck

# %%
written = export_deck(ws, freq=FREQ)
print(f"{len(written)} files written under {ws.reports}")
written.head(12)
