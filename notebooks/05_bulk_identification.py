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
# # 04 · Bulk identification
#
# The model runs over hundreds or thousands of unlabelled images; the results become a table
# (first, second and third choice with scores, entropy, margin); the table is cut the ways the
# write-up names; a person reviews a cut in a grid and the accepted labels go into the library
# in one undoable step.
#
# 1. **The model**: the production run (or the latest kept run; a small one is trained if the
#    workspace has none).
# 2. **Identify** the `unlabelled/` pool; results are written to `bulk/` as they come.
# 3. **Precision against hidden labels**: the zoo sample knows the true label of every pool image.
# 4. **Filters**: classes with low counts, classes built from staged images, look-alikes,
#    images in `unknown/`, lowest scores, most uncertain first.
# 5. **The review grid**: decisions made through the grid's own controls, applied to disk, undone.

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

results = identify(ws, run=run, batch_size=BATCH_SIZE)
results = results[[os.path.exists(p) for p in results["path"]]].reset_index(drop=True)  # files still in the pool
print(f"{len(results)} images identified, {results.attrs['n_errors']} unreadable; "
      f"table at {results.attrs['results_path']}")
display(load_errors(results.attrs["results_path"])[["relpath", "reason"]])
results.drop(columns=["path", "hash", "model", "time"]).head()

# %% [markdown]
# ## Precision against the hidden labels
#
# The zoo sample keeps the true label of every pool image in `unlabelled_truth.csv` (for scoring
# only). Precision of the images accepted at each confidence threshold, and the share of the pool
# that threshold accepts. Pool images of classes the model does not know (yet) can only be wrong.

# %%
from imgcls.bulk import precision_at_thresholds
from imgcls.sample import sample_truth

HAS_TRUTH = ws.sample_labels_file.exists()
truth = sample_truth(ws) if HAS_TRUTH else pd.DataFrame(columns=["path", "relpath", "label"])
truth_of = dict(zip(truth["path"], truth["label"]))
results["true_label"] = [truth_of.get(p, "") for p in results["path"]]
if HAS_TRUTH:
    precision = precision_at_thresholds(results, truth)
    display(precision)
    precision.plot(x="threshold", y=["precision", "share"], marker="o", figsize=(8, 4),
                   title=f"{run.run_id}: precision of accepted predictions", grid=True);

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
from imgcls.bulk import in_unknown, identify_unknown, look_alike, low_count_classes, lowest_scores, sort_by, staged_classes

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
      f"{LOOK_ALIKE_SCORES[0]:.0%}-{LOOK_ALIKE_SCORES[1]:.0%} confidence; their true labels:")
display(look["true_label"].value_counts())
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
# Each tile shows the image with its first and second choice. Per tile: accept the first choice
# (green button), accept the second, pick or type another class (a new name creates the class),
# send to `unknown/`, discard to `trash/`, or skip. Decisions are kept while the filter or the
# page changes; **Apply** moves the files in one journaled step, **Undo** reverts it.
# Thumbnails are made once and cached under `.imgcls/thumbs/`.

# %%
from imgcls.ui import ReviewGrid

grid = ReviewGrid(look if len(look) else results, lib, page_size=PAGE_SIZE)
grid

# %% [markdown]
# ### Decisions made by code, through the grid's own controls
#
# A reviewer who knows the hidden labels works through the first page: the buttons are clicked
# and the class boxes filled exactly as a person would. A true label the model does not know
# (e.g. `zebra`) is typed in as a new class. An invalid name shows an error on its tile.

# %%
from IPython.display import HTML

grid.tiles[0].label_input.value = "zebra/stripes"   # not a valid folder name
display(HTML(grid.tiles[0].error.value))
for tile in grid.visible_tiles:
    true_label = truth_of.get(tile.path, "")
    if not true_label:
        tile.skip_button.click()
    elif true_label == tile.row["top1_class"]:
        tile.accept_button.click()
    elif true_label == tile.row.get("top2_class"):
        tile.second_button.click()
    else:
        tile.label_input.value = true_label
display(HTML(grid.pending_label.value))
grid.decisions.assign(name=[os.path.basename(p) for p in grid.decisions["path"]]).drop(columns=["path"]).head(12)

# %% [markdown]
# Another filter, another page: the lowest scores. The decisions taken above are kept (the pending
# count says how many come from other views).

# %%
grid.set_results(lowest)
grid.tiles[0].discard_button.click()
grid.tiles[1].unknown_button.click()
grid.tiles[2].skip_button.click()
grid.next_button.click()                            # pages move; decisions stay
grid.prev_button.click()
display(HTML(grid.pending_label.value))
grid.decisions["action"].value_counts()

# %% [markdown]
# ## Apply, then undo
# One click moves every decided file; the journal makes it one undoable step.

# %%
counts_before = lib.counts()
grid.apply_button.click()
display(HTML(grid.summary_html.value))
from imgcls.library import count_changes

count_changes(counts_before, lib.counts())

# %%
grid.undo_button.click()
display(HTML(grid.summary_html.value))
restored = lib.counts()
print("library restored exactly:", restored[["label", "n"]].equals(counts_before[["label", "n"]]))
print(f"{grid.n_pending} decisions are pending again: correct any tile above and click Apply to keep them.")

# %% [markdown]
# The grid above is live: change a tile, click **Apply**, and the file is in its new class
# folder; **Undo** puts it back. Notebook 06 uses the same grid to raise the classes just under
# the cutoff.
