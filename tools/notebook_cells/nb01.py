"""Notebook 01: the image library."""

from .common import OPEN_WS, SETUP, code, md

NAME = "01_image_library.ipynb"

CELLS = [
    md("""
# 01 · The image library

The first step of the life cycle: a library of labelled images that can be trusted.
One folder per class under `library/`; a class trains only once it has at least
`CUTOFF` readable images; good images nobody can name yet wait in `library/unknown/`.

This notebook scans the library and shows what a curator needs to see: class counts against
the cutoff, flagged (staged, sideways, benchmark) and unreadable images, duplicate groups, and
the deterministic train / validation / test / benchmark splits.

Set `WORKSPACE` to your own folder (see `data/README.md` for the layout); left empty it
builds the embedded zoo sample.
"""),
    code("""
WORKSPACE = ""                      # your project folder; empty: the zoo sample
SAMPLE_DIR = "../demo-workspace"    # where the sample is built when WORKSPACE is empty
SAMPLE_IMAGE_SIZE = 64
SAMPLE_POOL_SIZE = 3000
CUTOFF = 40
""", parameters=True),
    code(SETUP),
    code(OPEN_WS),
    md("## Scan\nHashes and readability are cached: a rescan of an unchanged library reads no image."),
    code("""
from imgcls.library import Library, plot_class_counts, plot_image_grid
lib = Library(ws)
catalog = lib.scan(progress=True)
print(f"{len(catalog)} image files, {int((~catalog['readable']).sum())} unreadable")
catalog.head()
"""),
    md("## Class counts against the cutoff"),
    code("""
counts = lib.counts()
display(counts)
plot_class_counts(counts, cutoff=ws.cutoff)
"""),
    md("## Flagged images\nFlags are kept by content hash, so they survive moves and renames."),
    code("""
flagged = catalog[catalog["staged"] | (catalog["turns"] > 0)]
display(flagged.assign(sideways=flagged["turns"] > 0).groupby("label")[["staged", "sideways"]].sum())
sideways = catalog[catalog["turns"] > 0]
if len(sideways):
    display(plot_image_grid(sideways["path"], titles=sideways["relpath"], suptitle="Stored sideways: turned before training"))
"""),
    md("## Unreadable images\nThey never stop a scan; each is listed with its reason."),
    code("""
catalog.loc[~catalog["readable"], ["relpath", "error"]]
"""),
    md("## Duplicates\nExact (same bytes) and near (perceptual hash) duplicates, for review. "
       "Duplicates always share a split, so they cannot leak between train and test."),
    code("""
dups = lib.duplicates()
display(dups[["group", "kind", "relpath", "label"]])
if len(dups):
    display(plot_image_grid(dups["path"], titles=dups["kind"] + ": " + dups["relpath"], ncols=6,
                    suptitle="Duplicate groups (consecutive thumbnails share a group)"))
"""),
    md("## Splits\nAssigned from each image's content hash: stable as the library grows. "
       "The benchmark set is chosen once and never trained on."),
    code("""
from imgcls.splits import assign_splits, choose_benchmark, split_sizes
choose_benchmark(lib, per_class=5)
catalog = assign_splits(lib.catalog)
split_sizes(catalog, lib.classes())
"""),
]


