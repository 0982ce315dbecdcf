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
# # 06 · The throw-away run
#
# Two classes sit just under the cutoff (in the zoo sample: sheep 38 and giraffe 36 images, cutoff
# 40), so the production model has never heard of them, and bulk identification with it cannot
# find them in the pool. The write-up's trick: lower the cutoff to 35 for one run, train, and
# identify the pool with that model **only** to find images of the classes just under 40. The
# run is marked throw-away and is never promoted; once the classes have their images, the next
# regular run (notebook 03's head swap) includes them.
#
# The story starts from the sample as built, so by default this notebook builds a sample of its own
# (`make demo` and notebook 03 have already lifted sheep and giraffe over the cutoff in the shared demo workspace).
# Point `WORKSPACE` at your project to find images for its classes just under the cutoff.

# %% tags=["parameters"]
WORKSPACE = ""                      # your project folder; empty: the zoo sample
SAMPLE_DIR = "../demo-workspace-throwaway"   # a sample of its own: notebook 03 lifts sheep and giraffe in ../demo-workspace
SAMPLE_IMAGE_SIZE = 64
SAMPLE_POOL_SIZE = 3000
CUTOFF = 40                         # the real cutoff
THROWAWAY_CUTOFF = 35               # lowered for this run only
TARGETS = []                        # e.g. ["sheep", "giraffe"]; empty: every label between the two cutoffs
MAX_EPOCHS = 8                      # full size: 150 (until the plateau, as any run)
PATIENCE = 3                        # full size: 10
BATCH_SIZE = 64                     # images per model call during identification
ACCEPT_SCORE = 0.9                  # without hidden labels: the grid accepts only scores at or above this
PAGE_SIZE = 24                      # tiles per page of the review grid (12, 24, 48 or 96)

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
# ## Counts before: who is just under the cutoff?

# %%
from imgcls.library import Library, plot_class_counts

lib = Library(ws)
counts_before = lib.counts(cutoff=CUTOFF)
between = counts_before[(counts_before["n"] >= THROWAWAY_CUTOFF) & ~counts_before["meets_cutoff"]
                        & (counts_before["label"] != "unknown")]
targets = list(TARGETS) or between["label"].tolist()
print(f"Just under the cutoff of {CUTOFF} (at least {THROWAWAY_CUTOFF}):", ", ".join(targets)
      or "none: nothing here needs a throw-away run")
print("Classes a regular run trains on now:", ", ".join(lib.classes(cutoff=CUTOFF)))
plot_class_counts(counts_before, cutoff=CUTOFF)

# %% [markdown]
# ## Train the throw-away run at the lowered cutoff

# %%
from imgcls.training import train

run = train(ws, cutoff=THROWAWAY_CUTOFF, throwaway=True, max_epochs=MAX_EPOCHS, patience=PATIENCE, verbose=1)
print(run)
print("It knows the targets too:", [t for t in targets if t in run.classes])

# %% [markdown]
# The deploy gate never promotes a throw-away run:

# %%
from imgcls.evaluation import promote

print(promote(ws, run, reason="notebook 06: only to find images for the classes under the cutoff"))

# %% [markdown]
# ## Bulk identification, filtered to the classes just under the cutoff
#
# `throwaway_candidates` identifies the pool with the throw-away run and keeps the images whose
# first or second choice is a class still under the usual cutoff: exactly the targets. A
# throw-away model is weak on these classes (it saw few of their images), so the images with a
# target as *second* choice are reviewed too, after the first-choice ones.

# %%
from imgcls.bulk import precision_at_thresholds, throwaway_candidates
from imgcls.sample import attach_truth

candidates = throwaway_candidates(ws, run, cutoff=CUTOFF, batch_size=BATCH_SIZE)
first = candidates[candidates["choice"] == 1]
print(f"{candidates.attrs['n_identified']} pool images identified; {len(first)} predicted as",
      " or ".join(candidates.attrs["targets"]),
      f"and {len(candidates) - len(first)} more with one of them as second choice")
HAS_TRUTH = ws.sample_labels_file.exists()
# the sample's hidden labels, joined by content (resolved path, else content hash); none on your own workspace
candidates = attach_truth(candidates, ws) if HAS_TRUTH else candidates.assign(true_label="")
first = candidates[candidates["choice"] == 1]
if HAS_TRUTH:
    print("Precision of the first-choice candidates against the hidden labels:")
    display(precision_at_thresholds(first, thresholds=[0.0, 0.3, 0.5, 0.7, 0.9]))
candidates.groupby(["choice", "candidate"])["candidate_score"].describe()

# %% [markdown]
# ## Review in the grid
#
# The grid below is yours. A scripted reviewer (who here knows the hidden labels) works on a grid
# object of its own, so it never overwrites your decisions: it pages through the candidates looking
# for the targets only: a right first or second choice is accepted with the tile's buttons, a target
# predicted as something else is corrected in the tile's class box, anything else is skipped. It
# stops at the end of the page where every target has the images it lacked (the pool holds many more
# candidates; a person goes on as long as it pays). Without hidden labels (your own workspace), it
# accepts only target predictions scoring at least `ACCEPT_SCORE`.

# %%
from IPython.display import HTML
from imgcls.ui import ReviewGrid

grid = ReviewGrid(candidates, lib, page_size=PAGE_SIZE)
grid

# %%
reviewer = ReviewGrid(candidates, lib, page_size=PAGE_SIZE)
short_by = dict(zip(counts_before["label"], CUTOFF - counts_before["n"]))
for page in range(reviewer.n_pages):
    for tile in reviewer.visible_tiles:
        true_label = tile.row.get("true_label", "")
        if not HAS_TRUTH:
            confident = tile.row["top1_class"] in targets and tile.row["top1_score"] >= ACCEPT_SCORE
            (tile.accept_button if confident else tile.skip_button).click()
        elif true_label not in targets:
            tile.skip_button.click()
        elif true_label == tile.row["top1_class"]:
            tile.accept_button.click()
        elif true_label == tile.row["top2_class"]:
            tile.second_button.click()
        else:
            tile.label_input.value = true_label
    filed = reviewer.decisions.loc[reviewer.decisions["action"] == "label", "label"].value_counts()
    if all(filed.get(t, 0) >= short_by.get(t, 0) for t in targets):
        break   # every target has the images it lacked: the rest of the candidates can wait
    reviewer.next_button.click()
print(f"reviewed {page + 1} of {reviewer.n_pages} pages")
display(HTML(reviewer.pending_label.value))
reviewer.decisions.groupby(["action", "label"], dropna=False).size().rename("images")

# %%
applied = reviewer.decisions
reviewer.apply_button.click()
display(HTML(reviewer.summary_html.value))
if HAS_TRUTH:
    filings = attach_truth(applied[applied["action"] == "label"], ws)
    wrong = filings[filings["label"] != filings["true_label"]]
    print(f"{len(filings)} images filed into a class, {len(wrong)} wrong against the hidden labels")

# %% [markdown]
# ## Counts after: the targets make the cutoff

# %%
counts_after = lib.counts(cutoff=CUTOFF)
compare = counts_before[["label", "n", "meets_cutoff"]].merge(
    counts_after[["label", "n", "meets_cutoff"]], on="label", suffixes=("_before", "_after"))
display(compare[compare["label"].isin(targets)])
print("Classes a regular run trains on now:", ", ".join(lib.classes(cutoff=CUTOFF)))
print("Targets now at the cutoff:", [t for t in targets if t in lib.classes(cutoff=CUTOFF)])
plot_class_counts(counts_after, cutoff=CUTOFF)

# %% [markdown]
# The throw-away run has done its job; it stays in `runs/` (marked `throwaway`) for the record.
# The next regular run, a head swap from production in notebook 03, trains on the new class list.
