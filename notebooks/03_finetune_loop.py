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
# # 03 · The head-swap fine-tuning loop
#
# The write-up's central claim: instead of training from scratch every time, take the last
# trained model, **pop its output layer, add a new randomly initialised one** sized for the new
# class count, and keep training *all* weights. Generation after generation this plateaus in far
# fewer epochs (about 20 instead of 120) and at higher accuracy (99 % instead of 93 %).
#
# One turn of the loop: the **parent** (the production model; on a fresh sample with nothing in
# production, the latest run, or one trained now, and promoted first), a **labelling round** grows
# the library, then the next generation is trained twice on exactly the same catalog snapshot and
# class list: by **head swap** from the parent, and as a control **from scratch** (random weights,
# its own seed, marked throw-away so it can never serve). Then the evaluation plots and the
# **deploy gate**, which decides from its paired test on the fixed benchmark set.
#
# The notebook reads where the workspace stands first and says what it will do: on the README's
# path (`make demo` trained generations 1 and 2 and did the first labelling round) it starts from
# production and runs a later labelling round; on a fresh sample it starts at the first generation.

# %% tags=["parameters"]
WORKSPACE = ""                      # your project folder; empty: the zoo sample
SAMPLE_DIR = "../demo-workspace"
SAMPLE_IMAGE_SIZE = 64
SAMPLE_POOL_SIZE = 3000
CUTOFF = 40
MODEL = "mini_inception"            # the first generation, when one is trained here; full size: "inception_v4"
IMAGE_SIZE = 64                     # full size: 299
MAX_EPOCHS = 40                     # full size: 150 (room for the from-scratch control to plateau)
PATIENCE = 8                        # full size: 10 (a from-scratch start is noisy on the sample's small val split)
MIN_EPOCHS = 15                     # no early stop before this (a lucky early epoch must not end a run); full size: 20
SEED = 0
CONTROL_SEED = 1                    # the from-scratch control's own seed (never the parent's)
LABELLING = {"zebra": 60, "sheep": 20, "giraffe": 20}        # the sample's first labelling round
LATER_LABELLING = {"zebra": 20, "sheep": 15, "giraffe": 15, "elephant": 15}  # once zebra is a class

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
# ## Where the workspace stands, and what this notebook will do

# %%
from imgcls.training import workspace_state
state = workspace_state(ws)
labelling = LABELLING if "zebra" not in state.classes else LATER_LABELLING
print(state.describe())
print("\nThis notebook will:")
print(f"- start from production {state.production} (generation {state.production_generation})" if state.has_production
      else "- take the latest kept run as the first generation (or train one) and promote it: nothing is in production yet")
print(f"- run a labelling round on the sample: {labelling}" if state.is_sample
      else "- train on the library as it is (label new images first, e.g. in notebook 05)")
print(f"- train generation {state.next_generation if state.has_production else 2} by head swap, and a control from "
      f"scratch (seed {CONTROL_SEED}) on the same catalog snapshot; then ask the deploy gate")

# %% [markdown]
# ## The parent generation
# Production when there is one; otherwise the newest run that is not a throw-away, or a new one
# trained from scratch.

# %%
from imgcls.runs import lineage
from imgcls.training import choose_run
parent = choose_run(ws, "production" if state.has_production else None, train_if_missing=True, model=MODEL,
                    image_size=IMAGE_SIZE, max_epochs=MAX_EPOCHS, patience=PATIENCE, min_epochs=MIN_EPOCHS, seed=SEED,
                    verbose=1)
parent_generation = int(parent.config.get("generation") or len(lineage(parent)))   # 1: trained from scratch
print(f"parent: {parent.run_id}, generation {parent_generation}")

# %% [markdown]
# ## The first promotion (only when nothing is in production)
# With no production model there is nothing to compare against, so the gate accepts any run that is
# not a throw-away. When production exists (the README's path), this step is skipped.

# %%
from imgcls.evaluation import promote
from imgcls.runs import promotion_log
if state.has_production:
    print(f"Production is already {state.production}: no first promotion to make.")
else:
    display(promote(ws, parent, reason="first production model"))

# %% [markdown]
# ## The library grows
# A labelling round (on the sample: pool images with their hidden labels, moved through the
# library's journaled moves; a later round takes what the pool still holds). The first round makes
# zebra a class and lifts sheep and giraffe over the cutoff.

# %%
from imgcls.library import Library, assign_splits, ensure_benchmark
from imgcls.sample import simulate_labelling
lib = Library(ws)
if state.is_sample:
    moved = simulate_labelling(ws, labelling, seed=SEED + state.runs, at_most=True)
    print(f"labelled {len(moved)} pool images:", moved["label"].value_counts().to_dict())
# The one snapshot both arms train on: the benchmark set extended for new classes (never re-drawn), the splits fixed.
catalog = assign_splits(ensure_benchmark(ws, lib.classes(), catalog=lib.scan()))
lib.counts()

# %% [markdown]
# ## The next generation, twice: head swap vs from scratch
# Same catalog snapshot, same class list and splits, same stopping rule (at least `MIN_EPOCHS` epochs, then
# stop after `PATIENCE` without a better validation accuracy; the best epoch's weights are kept, whichever
# epoch it was). The head swap starts from the parent's weights; the control starts from random weights with its own seed (`CONTROL_SEED`), so it is
# a real from-scratch run, never a copy of the first generation; it is trained as a throw-away so it can never
# be deployed.

# %%
from imgcls.experiments import plot_learning_curves
from imgcls.training import class_changes, next_generation, train
display(class_changes(ws, parent))
stopping = dict(max_epochs=MAX_EPOCHS, patience=PATIENCE, min_epochs=MIN_EPOCHS)   # the same rule for both arms
gen1 = next_generation(ws, parent, seed=SEED, catalog=catalog, verbose=0, **stopping)
scratch = train(ws, model=parent.model_name, image_size=parent.image_size, classes=gen1.classes, catalog=catalog,
                seed=CONTROL_SEED, throwaway=True, verbose=0, **stopping)
arms = pd.DataFrame([{"arm": name, "run": r.run_id, "parent": r.parent or "(random weights)",
                      "train images": r.metrics["data"]["n_train"], "classes": r.num_classes,
                      "epochs": r.metrics["training"]["epochs_trained"],
                      "epochs to plateau": r.metrics["training"]["epochs_to_plateau"],
                      "plateau reached": bool(r.metrics["training"].get("stopped_early")),
                      "best val accuracy": r.metrics["training"]["best_val_accuracy"],
                      "test accuracy": r.metrics["test"]["accuracy"],
                      "benchmark accuracy": r.metrics["benchmark"]["accuracy"],
                      "wall time (s)": r.metrics["training"]["wall_time_s"]}
                     for name, r in [("parent", parent), ("head swap", gen1), ("from scratch", scratch)]])
display(arms)
print(f"control arm: {scratch.run_id}, from random weights (seed {CONTROL_SEED}) on the same "
      f"{arms['train images'][2]} training images as the head swap; the parent trained on {arms['train images'][0]}")
capped = arms.loc[~arms["plateau reached"] & (arms["arm"] != "parent"), "arm"].tolist()
if capped:
    print(f"Stopped at MAX_EPOCHS={MAX_EPOCHS} before a plateau: {', '.join(capped)}; its epoch count is a floor, "
          "not the epochs it needs (raise MAX_EPOCHS to compare plateaus).")

# %%
plot_learning_curves({"head swap": gen1, "from scratch": scratch}, workspace=ws)

# %% [markdown]
# ## The full experiment
# Over several seeds, as `benchmarks/headswap_vs_scratch.py` runs it (when its results exist).

# %%
from pathlib import Path
from imgcls.experiments import (headswap_speed_table, headswap_verdict, read_headswap_benchmark,
                                summarize_headswap)
bench_file = Path("../benchmarks/results/headswap_vs_scratch.json")
bench = read_headswap_benchmark(bench_file) if bench_file.exists() else None
if bench is not None:
    display(summarize_headswap(bench["runs"]))
    print(headswap_verdict(bench["runs"])["text"])
    display(headswap_speed_table(bench))
    display(plot_learning_curves(bench))
else:
    print("run: python benchmarks/headswap_vs_scratch.py")

# %% [markdown]
# ## Evaluating the new generation

# %%
from imgcls.evaluation import (compare_runs, evaluate, plot_calibration, plot_comparison, plot_confused_pairs,
                               plot_confusion, plot_per_class)
result = evaluate(gen1, "test", workspace=ws)
print(f"test accuracy {result['summary']['accuracy']:.1%}")
plot_confusion(result)

# %%
plot_per_class(result)

# %%
plot_confused_pairs(result)

# %%
plot_calibration(result)

# %% [markdown]
# ## Side by side on the fixed benchmark set

# %%
comparison = compare_runs([parent, gen1, scratch], workspace=ws)
display(comparison["summary"])
plot_comparison(comparison, labels={parent.run_id: f"the parent (generation {parent_generation})",
                                    gen1.run_id: "the head swap", scratch.run_id: "the from-scratch control"})

# %% [markdown]
# ## The deploy gate
# The new generation replaces production only if the gate's paired test on the benchmark set says it
# is not worse (and no class drops by more than allowed); the decision and every check are shown
# below as they came out, not assumed. The throw-away control is always refused.

# %%
decision = promote(ws, gen1, reason=f"generation {parent_generation + 1} (head swap)")
refused = promote(ws, scratch, reason="try the control arm")
display(decision, refused)
promotion_log(ws)

# %% [markdown]
# ## The lineage report
# Every run of the workspace as a family tree (which run each head swap started from, which ones
# served, which the gate refused), the production line generation by generation, and what each
# training cost in hours. It reads only run metadata: `imgcls lineage -w WORKSPACE` prints the same.

# %%
from imgcls.reports import generation_findings, lineage_report
lineage_tables = lineage_report(ws)
print(lineage_tables["tree"].attrs["text"])
findings = generation_findings(lineage_tables)
print(findings["accuracy"])
print(findings["cost"])
display(lineage_tables["generations"])
lineage_tables["cost"]
