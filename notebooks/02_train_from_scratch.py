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
# # 02 · Train from scratch
#
# The write-up's author spent weeks choosing a model, then trained it from random weights
# until validation accuracy stopped improving (about 120 epochs, 93 %). This notebook does
# the same on a small scale: a short **bake-off** of candidate models on the same data and
# splits, a look at the **augmentation** (flip, slight rotation, slight zoom), then a
# **training run until plateau** with early stopping, checkpoints every epoch (an interrupted
# run resumes where it stopped), TensorBoard logs and a CSV history. The run is written to
# `runs/<run_id>/` with everything needed to reproduce and serve it.
#
# The run trained here is the bake-off's winner (the most accurate candidate) unless `MODEL` names
# another one; the notebook says which and why. On the README's path (`make demo` first) the
# workspace already has a production model: this run is then a from-scratch candidate beside it and
# is **not** promoted here (notebook 03's deploy gate decides what serves). On a fresh sample it is
# the first run, and it fixes nothing new: the sample's benchmark set was fixed when it was built.
#
# Small defaults so that it runs in minutes on a laptop CPU. Full-size settings, as in the write-up:
# `MODEL = "inception_v4"`, `IMAGE_SIZE = 299`, `MAX_EPOCHS = 150`, `PATIENCE = 10`.

# %% tags=["parameters"]
WORKSPACE = ""                      # your project folder; empty: the zoo sample
SAMPLE_DIR = "../demo-workspace"
SAMPLE_IMAGE_SIZE = 64
SAMPLE_POOL_SIZE = 3000
CUTOFF = 40
BAKEOFF_MODELS = ["simple_cnn", "mini_inception", "mobilenetv3_small"]
BAKEOFF_EPOCHS = 3
MODEL = ""                          # empty: the bake-off's winner; full size: "inception_v4"
IMAGE_SIZE = 64                     # full size: 299
MAX_EPOCHS = 30                     # full size: 150 (the sample plateaus within about 20-30)
PATIENCE = 5                        # full size: 10
SEED = 0

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
# ## Where the workspace stands

# %%
from imgcls.training import workspace_state
state = workspace_state(ws)
print(state.describe())
print("\nThis notebook trains a new run from scratch;",
      f"production stays {state.production} (notebook 03's gate decides what serves)." if state.has_production
      else "no model is in production yet: notebook 03 promotes the first one.")

# %% [markdown]
# ## The models we can train
# Registered by name; each keeps its default input size and normalisation beside its builder.

# %%
from imgcls.models import get_model_spec, list_models
pd.DataFrame([{"model": m, "default input": get_model_spec(m).default_input_shape,
               "about": get_model_spec(m).description} for m in list_models()])

# %% [markdown]
# ## Bake-off
# Each candidate trains briefly on the same data and splits; accuracy, size, epoch time and CPU inference speed side by side.

# %%
from imgcls.experiments import bakeoff, plot_bakeoff
from imgcls.training import plot_history, train
board = bakeoff(ws, BAKEOFF_MODELS, epochs=BAKEOFF_EPOCHS, image_size=IMAGE_SIZE, seed=SEED, verbose=0)
display(board)
winner = str(board.loc[board["val_accuracy"].astype(float).idxmax(), "model"])
model_name = MODEL or winner
print(f"Training {model_name}: " + ("the bake-off's winner (the most accurate after "
      f"{BAKEOFF_EPOCHS} epoch{'s' if BAKEOFF_EPOCHS != 1 else ''})." if not MODEL or MODEL == winner else
      f"MODEL is set, so it is used although the bake-off's winner was {winner}."))
plot_bakeoff(board)

# %% [markdown]
# ## Augmentation
# Left-right flip, rotation within ±10°, zoom within ±10 %. Images whose subject is already small are never zoomed out; images flagged as sideways are turned upright before anything else.

# %%
from imgcls.inputs import preview_augmentation
from imgcls.core import read_image
from imgcls.library import Library
lib = Library(ws)
example = lib.catalog[lib.catalog["readable"] & lib.catalog["label"].isin(lib.classes())].iloc[0]
preview_augmentation(read_image(example["path"]), n=8, seed=SEED)

# %% [markdown]
# ## Train until plateau

# %%
run = train(ws, model=model_name, image_size=IMAGE_SIZE, max_epochs=MAX_EPOCHS, patience=PATIENCE, seed=SEED, verbose=1)
print(run.run_id, "-", len(run.classes), "classes:", ", ".join(run.classes))
plot_history(run)

# %% [markdown]
# ## Test accuracy and the confusion matrix

# %%
from imgcls.evaluation import evaluate, plot_confusion
result = evaluate(run, "test", workspace=ws)
print(f"test accuracy {result['summary']['accuracy']:.1%}, top-{result['summary']['k']} accuracy {result['summary']['top_k_accuracy']:.1%}")
display(result["per_class"])
plot_confusion(result)

# %%
from imgcls.runs import list_runs
list_runs(ws)
