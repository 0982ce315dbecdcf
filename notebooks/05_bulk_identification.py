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
# # 05 · Bulk identification
#
# The model runs over hundreds or thousands of unlabelled images; the results become a table
# (first, second and third choice with scores, entropy, margin); the table is cut the ways the
# write-up names; a person reviews a cut in a grid and the accepted labels go into the library
# in one undoable step.
#
# 1. **The model**: the production run (or the latest kept run; a small one is trained if the
#    workspace has none). On the README's path it is the model `make demo` (and notebook 03)
#    promoted; the notebook says which run it uses and which classes it knows.
# 2. **Identify** the `unlabelled/` pool; results are written to `bulk/` as they come.
# 3. **Precision against hidden labels**: the zoo sample knows the true label of every pool image.
# 4. **Filters**: classes with low counts, classes built from staged images, look-alikes,
#    images in `unknown/`, lowest scores, most uncertain first.
# 5. **The review grid**: yours to use; a scripted reviewer who knows the hidden labels works on
#    a grid object of its own (it never touches your decisions), applies its filings (0 wrong
#    against the hidden labels), and undoes them.

# %% tags=["parameters"]
WORKSPACE = ""                      # your project folder; empty: the zoo sample
SAMPLE_DIR = "../demo-workspace"    # where the sample is built when WORKSPACE is empty
SAMPLE_IMAGE_SIZE = 64
SAMPLE_POOL_SIZE = 3000
CUTOFF = 40
RUN = ""                # a run id; empty: production, else the latest kept run, else train one now
TRAIN_MAX_EPOCHS = 8    # only when no run exists yet; full size: 150 (notebook 02 trains the real one)
TRAIN_PATIENCE = 3      # full size: 10
BATCH_SIZE = 64         # images per model call during identification
LOW_COUNT = 70          # a low image count: classes under this many library images
LOOK_ALIKE = ""         # predicted label whose unsure images may be another animal; empty: read it off unknown/
LOOK_ALIKE_SCORES = (0.2, 0.8)   # the middling-confidence band of the look-alike filter
N_LOWEST = 24           # lowest-score images shown for mass removal
PAGE_SIZE = 24          # tiles per page of the review grid (12, 24, 48 or 96)

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
# ## The model
# Identification uses the production run unless `RUN` names another one.

# %%
import os
from imgcls.library import Library
from imgcls.training import choose_run

lib = Library(ws)
run = choose_run(ws, RUN, train_if_missing=True, max_epochs=TRAIN_MAX_EPOCHS, patience=TRAIN_PATIENCE)

# %% [markdown]
# ## Identify the pool
#
# `identify` streams the images through the model in batches and writes each chunk of results to
# Parquet as it goes, so a job that is stopped continues where it was. Unreadable files land in
# an errors table instead of stopping it.

# %%
from imgcls.bulk import identify, load_errors
from imgcls.sample import attach_truth

HAS_TRUTH = ws.sample_labels_file.exists()
results = identify(ws, run=run, batch_size=BATCH_SIZE)
results = results[[os.path.exists(p) for p in results["path"]]].reset_index(drop=True)  # files still in the pool
if HAS_TRUTH:  # the sample's hidden labels, joined by content (resolved path, else content hash)
    results = attach_truth(results, ws)
else:
    results = results.assign(true_label="")
print(f"{len(results)} images identified, {results.attrs['n_errors']} unreadable; "
      f"table at {results.attrs['results_path']}")
display(load_errors(results.attrs["results_path"])[["relpath", "reason"]])
results.drop(columns=["path", "hash", "model", "time"]).head()

# %% [markdown]
# ## Precision against the hidden labels
#
# The zoo sample keeps the true label of every pool image in `unlabelled_truth.csv` (for scoring
# only); `attach_truth` joined them to the results above. Precision of the images accepted at each
# confidence threshold, and the share of the pool that threshold accepts. Pool images of classes the
# model does not know (yet) can only be wrong.

# %%
from imgcls.bulk import plot_precision, precision_at_thresholds

if HAS_TRUTH:
    print(f"hidden labels joined: {results.attrs['truth_join']}")
    precision = precision_at_thresholds(results)
    display(precision)
    display(plot_precision(precision, run_id=run.run_id))
else:
    print("Your own workspace has no hidden labels: precision is measured on the sample only.")

# %% [markdown]
# ## Filters
#
# Each filter takes the results table and returns the rows it keeps, so filters chain.
#
# ### Classes with low image counts
# Images predicted as a class that has few library images: the quickest way to raise its count.
# (The production model only knows classes at the cutoff; notebook 06 finds images for the
# classes just under it with a throw-away run.)

# %%
from imgcls.bulk import (in_unknown, identify_unknown, look_alike, low_count_classes, lowest_scores, plot_true_labels,
                         sort_by, staged_classes)

counts = lib.counts()
display(counts)
low = low_count_classes(results, lib, below=LOW_COUNT)
print(f"{len(low)} images predicted as classes with fewer than {LOW_COUNT} library images")
low[["relpath", "top1_class", "top1_score", "class_count", "true_label"]].head(10)

# %% [markdown]
# ### Classes built from staged images
# A class whose library images are studio shots has not seen the real thing; real images the
# model still recognises are the ones to add.

# %%
staged = staged_classes(results, lib)
print(f"{len(staged)} images predicted as classes built from staged images")
staged[["relpath", "top1_class", "top1_score", "staged_share", "true_label"]].head(10)

# %% [markdown]
# ### Images in `unknown/`, and the look-alike they point to
# `unknown/` holds good images nobody could name yet. What the model calls them tells where their
# class hides in the pool: among the unsure predictions of that class ("an antelope at lower
# confidence may be a gazelle").

# %%
unknown_results = identify_unknown(ws, run=run, batch_size=BATCH_SIZE)
display(in_unknown(unknown_results, lib)["top1_class"].value_counts().rename("unknown/ images predicted as"))
lookalike = LOOK_ALIKE or (unknown_results if len(unknown_results) else results)["top1_class"].mode().iat[0]
look = look_alike(results, lookalike, min_score=LOOK_ALIKE_SCORES[0], max_score=LOOK_ALIKE_SCORES[1])
print(f"{len(look)} pool images predicted as {lookalike!r} at "
      f"{LOOK_ALIKE_SCORES[0]:.0%}-{LOOK_ALIKE_SCORES[1]:.0%} confidence")
if HAS_TRUTH:
    display(plot_true_labels(look, predicted=lookalike))
look[["relpath", "top1_class", "top1_score", "top2_class", "top2_score", "true_label"]].head(10)

# %% [markdown]
# ### Lowest scores, for mass removal

# %%
from imgcls.library import plot_image_grid

lowest = lowest_scores(results, n=N_LOWEST)
plot_image_grid(lowest["path"], titles=lowest["top1_class"] + " " + lowest["top1_score"].round(2).astype(str),
                ncols=8, suptitle=f"The {len(lowest)} lowest first-choice scores")

# %% [markdown]
# ### Most uncertain first
# By margin (first minus second score) or by entropy of all the scores.

# %%
by_margin = sort_by(results, "margin")
by_entropy = sort_by(results, "entropy")
display(by_margin[["relpath", "top1_class", "top1_score", "top2_class", "top2_score", "margin", "true_label"]].head(8))
by_entropy[["relpath", "top1_class", "top1_score", "entropy", "true_label"]].head(8)

# %% [markdown]
# ## The review grid
#
# Each tile shows the image with its first and second choice. Per tile: accept the first choice,
# accept the second, pick or type another class (a new name creates the class), send to
# `unknown/`, discard to `trash/`, or skip. Decisions are kept while the filter or the page
# changes; **Apply** moves the files in one journaled step, **Undo** reverts it. Thumbnails are
# made once and cached under `.imgcls/thumbs/`. This grid is yours: nothing below clicks it.

# %%
from imgcls.ui import ReviewGrid

rows = look if len(look) else by_margin     # the look-alike filter; else the most uncertain first
grid = ReviewGrid(rows, lib, page_size=PAGE_SIZE)
grid

# %% [markdown]
# ### A scripted reviewer, on a grid of its own
#
# A reviewer who knows the hidden labels works through the first page of the same rows on its own
# grid object (so it never overwrites a decision you made above): the buttons are clicked and the
# class boxes filled exactly as a person would. A right first or second choice is accepted with its
# button, a wrong one is corrected by typing the true label (a class the model does not know yet,
# e.g. `zebra`, is created), and a file with no label is skipped. An invalid name shows an error on
# its tile.

# %%
from IPython.display import HTML

reviewer = ReviewGrid(rows, lib, page_size=PAGE_SIZE)
reviewer.tiles[0].label_input.value = "zebra/stripes"   # not a valid folder name
display(HTML(reviewer.tiles[0].error.value))
for tile in reviewer.visible_tiles:
    true_label = tile.row.get("true_label", "")
    if not true_label:
        tile.skip_button.click()
    elif true_label == tile.row["top1_class"]:
        tile.accept_button.click()
    elif true_label == tile.row.get("top2_class"):
        tile.second_button.click()
    else:
        tile.label_input.value = true_label
display(HTML(reviewer.pending_label.value))
filed = reviewer.decisions.merge(rows[["path", "top2_class", "true_label"]], on="path", how="left")
filed["how"] = filed["action"]
filed.loc[filed["action"] == "label", "how"] = "typed the true label"
filed.loc[(filed["action"] == "label") & (filed["label"] == filed["top2_class"]), "how"] = "second choice"
filed.loc[(filed["action"] == "label") & (filed["label"] == filed["top1_class"]), "how"] = "first choice"
display(filed["how"].value_counts().rename("decisions"))
filed.assign(name=[os.path.basename(p) for p in filed["path"]]).drop(columns=["path"]).head(12)

# %% [markdown]
# Another filter, another page: the lowest scores. The decisions taken above are kept (the pending
# count says how many come from other views). Here the reviewer sends the lowest-scoring images out
# of the pool's way: the first to `trash/`, the next to `unknown/`, and skips the third.

# %%
reviewer.set_results(lowest)
reviewer.tiles[0].discard_button.click()
reviewer.tiles[1].unknown_button.click()
reviewer.tiles[2].skip_button.click()
reviewer.next_button.click()                            # pages move; decisions stay
reviewer.prev_button.click()
display(HTML(reviewer.pending_label.value))
reviewer.decisions["action"].value_counts()

# %% [markdown]
# ## Apply, then undo
# One click moves every decided file; the journal makes it one undoable step. Every image filed
# into a class is checked against its hidden label.

# %%
counts_before = lib.counts()
applied = reviewer.decisions
reviewer.apply_button.click()
display(HTML(reviewer.summary_html.value))
filings = attach_truth(applied[applied["action"] == "label"], ws) if HAS_TRUTH else applied.iloc[0:0]
wrong = filings[filings["label"] != filings["true_label"]]
if HAS_TRUTH:
    print(f"{len(filings)} images filed into a class, {len(wrong)} wrong against the hidden labels")
from imgcls.library import count_changes

count_changes(counts_before, lib.counts())

# %%
reviewer.undo_button.click()
display(HTML(reviewer.summary_html.value))
restored = lib.counts()
print("library restored exactly:", restored[["label", "n"]].equals(counts_before[["label", "n"]]))
print(f"your grid above still holds your own {grid.n_pending} pending decisions; the reviewer's "
      f"{reviewer.n_pending} are pending again on its own grid.")

# %% [markdown]
# The grid above is live: change a tile, click **Apply**, and the file is in its new class
# folder; **Undo** puts it back. Notebook 06 uses the same grid to raise the classes just under
# the cutoff.
