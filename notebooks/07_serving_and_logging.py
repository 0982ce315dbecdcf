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
# # 07 · Serving, with every transaction logged
#
# The production model behind an HTTP endpoint (FastAPI on uvicorn, bound to 127.0.0.1).
# Every prediction served is written to the workspace's transaction log (`serving.sqlite`)
# *before* the client gets its answer; manual evaluations of served predictions are stored
# beside them. The same predictor works from Python without HTTP, with the same logging.
#
# From a shell: `imgcls serve --workspace PATH` (production run, port 8000); it follows the
# production pointer, so `imgcls promote` or `imgcls rollback` swaps the model without a restart.
#
# The server protects itself, and every refusal is a logged row with its status and reason
# (`imgcls serve --help` lists every limit and its default): uploads over 10 MB, over the
# workspace's pixel limit (64 MP) or over the decode budget (pixels x bytes per pixel: an 8-bit
# RGB image at the pixel limit fits, a 16-bit RGBA one does not) get 413; at most 4 requests per
# core decode at once and their decoding holds at most a set amount of memory, a request that
# waits more than 30 s gets 503 with `Retry-After`; an evaluation body is at most 16 KB and its
# `true_class` is one of the model's classes or flagged `new_class`. Off this machine, a bearer
# token (`--token-file` or `$IMGCLS_TOKEN`) and a per-client rate limit (429) apply.
#
# Every request this notebook sends is **demo traffic**: it carries the simulated-time header, so the
# log flags it `simulated` and the reports can tell it from real use. On the sample the requests are
# pool images of classes the served model knows (their hidden labels play the reviewer); on the
# README's path that is the model `make demo` and notebook 03 put in production.

# %% tags=["parameters"]
WORKSPACE = ""                      # your project folder; empty: the zoo sample
SAMPLE_DIR = "../demo-workspace"
SAMPLE_IMAGE_SIZE = 64
SAMPLE_POOL_SIZE = 3000
CUTOFF = 40
N_REQUESTS = 20
MODEL = "mini_inception"
IMAGE_SIZE = 64
MAX_EPOCHS = 30

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
# ## The model to serve
# The production run (promoted in notebook 03); one is trained and promoted if there is none.

# %%
from imgcls.evaluation import promote
from imgcls.runs import production_run
from imgcls.training import train
run = production_run(ws)
if run is None:
    run = train(ws, model=MODEL, image_size=IMAGE_SIZE, max_epochs=MAX_EPOCHS, verbose=0)
    promote(ws, run, reason="first production model (notebook 07)")
    run = production_run(ws)
run.run_id

# %% [markdown]
# ## Start the server

# %%
from imgcls.serving import Predictor, start_server
predictor = Predictor(ws, run="production")
server = start_server(predictor, allow_simulated=True)   # accepts requests marked as demo traffic
print("serving at", server.url)
import httpx
client = httpx.Client(base_url=server.url, timeout=30)
display(client.get("/health").json(), client.get("/model").json())

# %% [markdown]
# ## Send requests
# Demo traffic: pool images still in `unlabelled/` whose hidden label is a class the model knows
# (on your own workspace, the first unlabelled images), each marked simulated.

# %%
from imgcls.core import isoformat, iter_image_files, utcnow
from imgcls.sample import sample_truth
from imgcls.serving import SIMULATED_TIME_HEADER
known = list(client.get("/model").json()["classes"])
truth = (sample_truth(ws, present_only=True, classes=known).sample(frac=1.0, random_state=0)
         if ws.sample_labels_file.exists() else None)
paths = (list(truth["path"][:N_REQUESTS]) if truth is not None
         else [str(p) for _, p in zip(range(N_REQUESTS), iter_image_files(ws.unlabelled))])
demo = {SIMULATED_TIME_HEADER: isoformat(utcnow())}   # marks each request as demo traffic
answers = [client.post("/predict", files={"file": (p, open(p, "rb").read())}, headers=demo).json() for p in paths]
print(f"{len(answers)} demo requests from {truth['label'][:N_REQUESTS].nunique() if truth is not None else '?'} "
      f"known classes")
pd.DataFrame(answers).head()

# %% [markdown]
# ## A bad upload
# A 4xx with the reason, and a failed transaction in the log.

# %%
bad = client.post("/predict", files={"file": ("notes.jpg", b"<html>not an image</html>")}, headers=demo)
bad.status_code, bad.json()

# %% [markdown]
# ## Manual evaluations
# A reviewer checks served predictions; on the sample the hidden labels play the reviewer.

# %%
from pathlib import Path
true_of = dict(zip(truth["path"], truth["label"])) if truth is not None else {}
for p, a in list(zip(paths, answers))[: max(1, len(paths) // 2)]:
    true = true_of.get(p)
    verdict = "unsure" if not true else ("correct" if true == a["class"] else "wrong")
    client.post("/evaluations", json={"transaction_id": a["transaction_id"], "verdict": verdict,
                                      "reviewer": "notebook-07", "true_class": true or None,
                                      "new_class": bool(true) and true not in known})

# %% [markdown]
# ## The log

# %%
from imgcls.translog import TransactionLog
log = TransactionLog(ws)
display(log.transactions().tail(8))
display(log.evaluations().tail(5))
mine = log.transactions(columns=["simulated"]).tail(len(paths) + 1)
print(log.count(), "transactions logged;", f"this notebook's {len(mine)} are all flagged simulated:",
      bool(mine["simulated"].all()))

# %%
client.close()
server.stop()
predictor.close()
log.close()
