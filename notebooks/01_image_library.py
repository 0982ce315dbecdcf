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
# # 01 · The image library
#
# The first step of the life cycle: a library of labelled images that can be trusted.
# One folder per class under `library/`; a class trains only once it has at least
# `CUTOFF` readable images; good images nobody can name yet wait in `library/unknown/`.
#
# This notebook scans the library and shows what a curator needs to see: class counts against
# the cutoff, flagged (staged, sideways, benchmark) and unreadable images, duplicate groups, and
# the deterministic train / validation / test / benchmark splits.
#
# Set `WORKSPACE` to your own folder (see `data/README.md` for the layout); left empty it
# opens the zoo sample in `SAMPLE_DIR`: the one `make demo` built (the README's path), or a
# fresh one built here when the folder is empty. Nothing in this notebook trains or moves an image,
# so it reads the same on both.

# %% tags=["parameters"]
WORKSPACE = ""                      # your project folder; empty: the zoo sample
SAMPLE_DIR = "../demo-workspace"    # where the sample is built when WORKSPACE is empty
SAMPLE_IMAGE_SIZE = 64
SAMPLE_POOL_SIZE = 3000
CUTOFF = 40

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
# ## Scan
# Hashes and readability are cached: a rescan of an unchanged library reads no image.

# %%
from imgcls.library import Library, plot_class_counts, plot_image_grid
lib = Library(ws)
catalog = lib.scan(progress=True)
print(f"{len(catalog)} image files, {int((~catalog['readable']).sum())} unreadable")
catalog.head()

# %% [markdown]
# ## Class counts against the cutoff

# %%
counts = lib.counts()
display(counts)
plot_class_counts(counts, cutoff=ws.cutoff)

# %% [markdown]
# ## Flagged images
# Flags are kept by content hash, so they survive moves and renames.

# %%
flagged = catalog[catalog["staged"] | (catalog["turns"] > 0)]
display(flagged.assign(sideways=flagged["turns"] > 0).groupby("label")[["staged", "sideways"]].sum())
sideways = catalog[catalog["turns"] > 0]
if len(sideways):
    display(plot_image_grid(sideways["path"], titles=sideways["relpath"], suptitle="Stored sideways: turned before training"))

# %% [markdown]
# ## Unreadable images
# They never stop a scan; each is listed with its reason.

# %%
catalog.loc[~catalog["readable"], ["relpath", "error"]]

# %% [markdown]
# ## Duplicates
# Exact (same bytes) and near (perceptual hash) duplicates, for review. Duplicates always share a split, so they cannot leak between train and test.

# %%
dups = lib.duplicates()
display(dups[["group", "kind", "relpath", "label"]])
if len(dups):
    display(plot_image_grid(dups["path"], titles=dups["kind"] + ": " + dups["relpath"], ncols=6,
                    suptitle="Duplicate groups (consecutive thumbnails share a group)"))

# %% [markdown]
# ## Splits
# Assigned from each image's content hash: stable as the library grows. The benchmark set is fixed
# once, before the first training (the zoo sample fixes it when it is built), and never trained on:
# `choose_benchmark` only adds images for classes that have none yet, it never re-draws the set.

# %%
from imgcls.library import assign_splits, choose_benchmark, split_sizes
bench = choose_benchmark(lib)  # 10% of every label (at least 10 images), fixed from now on
added = bench.attrs["added"]
print(f"benchmark set: {len(bench)} images;",
      f"added now for {', '.join(added)}" if added else "already fixed, nothing added")
catalog = assign_splits(lib.catalog)
split_sizes(catalog, lib.classes())
