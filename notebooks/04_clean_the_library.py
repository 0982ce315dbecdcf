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
# # 04 · Clean the library with the model
#
# **Finding first**: a mislabelled library image poisons every later generation, and the model
# itself is the best tool to find one. Images whose label the model, seeing them *out of sample*,
# disagrees with rise to the top of a ranking: on scikit-learn's digits with 5 % of the labels
# flipped, the first 90 images of the ranking hold 89 of the 90 flipped ones (precision 0.99,
# against 0.90 for the same method on raw pixels; `benchmarks/results/label_issues.json`). Here
# the same scan runs on this workspace, a person reviews what it flags in the review grid, and
# the fixes go into the library in one undoable step.
#
# The step the write-up puts between generations: after a model plateaus, "perform the evaluation
# of the trained model to clean up the data set", then add new images and train the next one.
#
# 1. **The model and its embeddings**: the production run (or the latest kept run; a small one is
#    trained if there is none). Every library image is embedded once (the `avg_pool` layer),
#    cached in the run folder.
# 2. **Mistakes to find** (the sample only): a few images are filed under a wrong class on purpose,
#    in one journaled step undone at the end, so the scan can be checked against a known answer.
# 3. **Label issues**: a 5-fold linear head on the embeddings gives every image out-of-sample
#    probabilities; cleanlab ranks the labels by quality, flags the likely wrong ones and
#    suggests a class; the per-class noise table is stored in the run folder (the deck's
#    noise slide, notebook 08).
# 4. **Cross-class duplicates and outliers** from the same embeddings.
# 5. **The library-mode review grid**: yours to use; a scripted reviewer works on a grid of its
#    own, applies its decisions, then undoes them. `imgcls label-issues` writes the same ranking
#    as a CSV to review elsewhere; `imgcls apply` takes it back.

# %% tags=["parameters"]
WORKSPACE = ""                      # your project folder; empty: the zoo sample
SAMPLE_DIR = "../demo-workspace"    # where the sample is built when WORKSPACE is empty
SAMPLE_IMAGE_SIZE = 64
SAMPLE_POOL_SIZE = 3000
CUTOFF = 40
RUN = ""                # a run id; empty: production, else the latest kept run, else train one now
TRAIN_MAX_EPOCHS = 8    # only when no run exists yet; full size: 150 (notebook 02 trains the real one)
TRAIN_PATIENCE = 3      # full size: 10
PLANT_MISTAKES = 8      # sample only: images filed in a wrong folder on purpose (undone at the end)
SEED = 0
FOLDS = 5               # K of the cross-validated linear head
BATCH_SIZE = 64         # images per model call while embedding
DUPLICATE_SIMILARITY = 0.95   # embeddings this alike in different classes: one label is wrong
N_OUTLIERS = 16         # images least like their own classes shown
PAGE_SIZE = 12          # tiles per page of the review grid

# %%
# %matplotlib inline
import warnings
warnings.filterwarnings("ignore", category=UserWarning)
import os
import numpy as np
import pandas as pd
from IPython.display import HTML, display
pd.set_option("display.max_columns", 30)
pd.set_option("display.width", 160)

# %%
from imgcls.core import open_workspace
from imgcls.sample import build_sample

# The zoo sample unless WORKSPACE names your own project folder (after `make demo`: the demo's).
ws = (open_workspace(WORKSPACE) if WORKSPACE
      else build_sample(SAMPLE_DIR, image_size=SAMPLE_IMAGE_SIZE, pool_size=SAMPLE_POOL_SIZE, overwrite=True))
ws = ws.with_cutoff(CUTOFF)
ws

# %% [markdown]
# ## The model and its embeddings
#
# The embeddings come from the run being cleaned for (its own model: on the benchmark it ranked
# flipped labels better than its parent's; `prefer_parent=True` uses the parent generation's).
# They are cached in `runs/<id>/embeddings/` by content hash: a second scan reads no image.

# %%
from imgcls.library import Library
from imgcls.training import choose_run

lib = Library(ws)
run = choose_run(ws, RUN, train_if_missing=True, max_epochs=TRAIN_MAX_EPOCHS, patience=TRAIN_PATIENCE)
counts_at_start = lib.counts()

# %% [markdown]
# ## Mistakes to find (the sample only)
#
# The sample's library is labelled right by construction, so a few labelling mistakes are made on
# purpose: `PLANT_MISTAKES` images, chosen at random among the model's classes (benchmark images
# left alone), are moved to another of its classes in one journaled step. The end of the notebook
# undoes it. On your own library nothing is planted.

# %%
IS_SAMPLE = ws.sample_labels_file.exists()   # the zoo sample (also when WORKSPACE names a copy of it)
catalog = lib.scan()
candidates = catalog[catalog["label"].isin(run.classes) & catalog["readable"].astype(bool)
                     & ~catalog["benchmark"].astype(bool)]
rng = np.random.default_rng(SEED)
n_plant = min(PLANT_MISTAKES if IS_SAMPLE else 0, len(candidates))
picked = candidates.iloc[rng.choice(len(candidates), n_plant, replace=False)] if n_plant else candidates.iloc[0:0]
wrong_labels = [rng.choice([c for c in run.classes if c != true]) for true in picked["label"]]
planted = lib.apply(pd.DataFrame({"path": picked["path"], "action": "label", "label": wrong_labels}))
moved = planted["new_path"].notna().to_numpy()
# where each planted image is now (absolute, as the grid shows paths) -> its true label
truth = dict(zip(map(os.path.abspath, planted["new_path"][moved]), picked["label"].to_numpy()[moved]))
print(f"{len(truth)} images filed in a wrong folder on purpose (one journaled step, undone at the end)")
pd.DataFrame({"image": [os.path.basename(p) for p in truth], "filed as": planted["label"][moved].tolist(),
              "true label": list(truth.values())})

# %% [markdown]
# ## Label issues
#
# `find_label_issues` embeds the library (cached), fits the 5-fold linear head (a duplicate group
# never split across folds) and hands the out-of-sample probabilities to cleanlab. Every labelled
# image gets a label quality in [0, 1] (low: likely wrong), a flag, and for a flagged image the
# class it more likely belongs to. Classes with fewer than 10 images are left out (too few to learn).

# %%
from imgcls.cleaning import find_label_issues, library_embeddings, read_label_noise

emb = library_embeddings(ws, run, batch_size=BATCH_SIZE, progress=False)
issues = find_label_issues(ws, run, embeddings=emb, folds=FOLDS, seed=SEED)
flagged = issues[issues["is_issue"]]
is_planted = issues["path"].map(os.path.abspath).isin(list(truth))
found = (is_planted & issues["is_issue"]).sum()
top = is_planted.head(max(len(truth), 1)).sum()
print(f"Findings: {len(flagged)} of {len(issues)} labelled images flagged as likely mislabelled "
      f"({len(emb)} embedded with run {emb.run_id}, {emb.source} model)."
      + (f" {found} of the {len(truth)} planted mistakes are flagged; the first {len(truth)} of the ranking "
         f"hold {top} of them." if truth else ""))
if issues.attrs["excluded_classes"]:
    print("left out (too few images):", issues.attrs["excluded_classes"])
issues.assign(planted=is_planted)[
    ["rank", "relpath", "given_label", "suggested_label", "label_quality", "is_issue", "planted"]].head(15)

# %% [markdown]
# ### Noise per class
#
# cleanlab's estimate of the share of each class's images that carry a wrong label, stored in the
# run folder (`label_noise.csv`) so the deck (notebook 08, `imgcls report`) shows it as a slide
# without TensorFlow. Classes under 20 images are faded and never headline.

# %%
from imgcls.reports import label_noise_report, plot_label_noise

display(read_label_noise(run)[["label", "n", "flagged", "estimated_issues", "noise_rate"]].round(3))
plot_label_noise(label_noise_report(ws, run.run_id))

# %% [markdown]
# ## Cross-class duplicates and outliers
#
# Two images nearly identical to the model but filed in **different** classes: one of the two
# labels is wrong (the library's own duplicate groups across classes are listed too). An
# **outlier** is far from every image of its own class, as far as pictures of another class
# usually are: a candidate for `unknown/` or the trash.

# %%
from imgcls.cleaning import class_outliers, cross_class_duplicates
from imgcls.library import plot_image_grid

pairs = cross_class_duplicates(emb, threshold=DUPLICATE_SIMILARITY)
print(f"{len(pairs)} pairs of near-duplicates in different classes "
      f"({int(pairs['same_group'].sum())} of them duplicate groups of the library)")
display(pairs[["relpath_a", "label_a", "relpath_b", "label_b", "similarity", "same_group"]].head(10).round(3))
outliers = class_outliers(emb)
print(f"{int(outliers['is_outlier'].sum())} images flagged as outliers of their classes "
      f"(score > 1: farther from their own label's images than pictures usually are from other labels)")
shown = outliers.head(N_OUTLIERS)
plot_image_grid(shown["path"], titles=shown["label"] + " " + shown["outlier_score"].round(2).astype(str), ncols=8,
                suptitle=f"The {len(shown)} images least like the rest of their label (label, outlier score)")

# %% [markdown]
# ## The library-mode review grid
#
# Flagged images, most likely wrong first. Each tile shows the class the image is filed as, the
# class the model says, the label quality, and thumbnails of its nearest labelled images (why the
# model thinks so). Per tile: **relabel** to the suggested class (key 1), **keep** the label
# (key 2 or the keep button), pick or type another class, **unknown**, or **trash**. **Apply**
# moves the files in one journaled step, **Undo** reverts it. This grid is yours: nothing below
# clicks it.

# %%
from imgcls.ui import LabelIssueGrid

grid = LabelIssueGrid(issues, lib, embeddings=emb, page_size=PAGE_SIZE)
grid

# %% [markdown]
# ### A scripted reviewer, on a grid of its own
#
# A reviewer who knows which images were planted works through the first page on its own grid
# object, clicking the tiles' buttons as a person would: a planted image is relabelled to its true
# class (the relabel button when the model suggests it, else typing the class), the most unusual
# other image goes to `unknown/`, and every other flagged image keeps its label.

# %%
reviewer = LabelIssueGrid(issues, lib, embeddings=emb, page_size=PAGE_SIZE)
odd = set(outliers[outliers["is_outlier"]]["path"])
sent_to_unknown = 0
for tile in reviewer.visible_tiles:
    true_label = truth.get(tile.path)
    if true_label is not None and true_label == tile.row["suggested_label"]:
        tile.accept_button.click()                 # relabel to the suggestion
    elif true_label is not None:
        tile.label_input.value = true_label        # the model suggested another class: type the true one
    elif tile.path in odd and not sent_to_unknown:
        tile.unknown_button.click()
        sent_to_unknown += 1
    else:
        tile.second_button.click()                 # keep the label it has
display(HTML(reviewer.pending_label.value))
decided = reviewer.decisions_table()
decided.assign(path=[os.path.relpath(p, ws.root) for p in decided["path"]])

# %% [markdown]
# ## Apply, then undo
# One click moves every decided file (keeps move nothing); the journal makes it one undoable step.

# %%
from imgcls.library import count_changes

counts_before = lib.counts()
reviewer.apply_button.click()
display(HTML(reviewer.summary_html.value))
fixed = sum(os.path.isfile(os.path.join(ws.library, label, os.path.basename(path))) for path, label in truth.items())
print(f"{fixed} of the {len(truth)} planted mistakes are back in their true class")
count_changes(counts_before, lib.counts())

# %%
reviewer.undo_button.click()
display(HTML(reviewer.summary_html.value))
print("library as before the review:", lib.counts()[["label", "n"]].equals(counts_before[["label", "n"]]))
if len(truth):
    lib.undo(1)        # and the planted mistakes
print("library restored exactly:", lib.counts()[["label", "n"]].equals(counts_at_start[["label", "n"]]))
print(f"your grid above still holds your own {grid.n_pending} pending decisions.")

# %% [markdown]
# To review elsewhere: `imgcls label-issues -w WORKSPACE --out issues.csv` writes the ranked table
# with empty `action` and `label` columns; fill in the rows you decide (`skip` keeps, `label` with
# the class relabels, `unknown`, `discard`; an empty row is skipped) and run
# `imgcls apply issues.csv -w WORKSPACE` (undo: `imgcls undo`). Notebook 05 turns the cleaned
# library's model on the unlabelled pool.
