"""Notebook 06: serving with transaction logging."""

from .common import OPEN_WS, SETUP, code, md

NAME = "06_serving_and_logging.ipynb"

CELLS = [
    md("""
# 06 · Serving, with every transaction logged

The production model behind an HTTP endpoint (FastAPI on uvicorn, bound to 127.0.0.1).
Every prediction served is written to the workspace's transaction log (`serving.sqlite`)
*before* the client gets its answer; manual evaluations of served predictions are stored
beside them. The same predictor works from Python without HTTP, with the same logging.

From a shell: `imgcls serve --workspace PATH` (production run, port 8000).
"""),
    code("""
WORKSPACE = ""                      # your project folder; empty: the zoo sample
SAMPLE_DIR = "../demo-workspace"
SAMPLE_IMAGE_SIZE = 64
SAMPLE_POOL_SIZE = 3000
CUTOFF = 40
N_REQUESTS = 20
MODEL = "mini_inception"
IMAGE_SIZE = 64
MAX_EPOCHS = 30
""", parameters=True),
    code(SETUP),
    code(OPEN_WS),
    md("## The model to serve\nThe production run (promoted in notebook 03); one is trained and promoted if there is none."),
    code("""
from imgcls.evaluation import production_run, promote
from imgcls.training import train
run = production_run(ws)
if run is None:
    run = train(ws, model=MODEL, image_size=IMAGE_SIZE, max_epochs=MAX_EPOCHS, verbose=0)
    promote(run, ws, reason="first production model (notebook 06)")
    run = production_run(ws)
run.run_id
"""),
    md("## Start the server"),
    code("""
from imgcls.serving import Predictor, start_server
predictor = Predictor(ws, run="production")
server = start_server(predictor)
print("serving at", server.url)
import httpx
client = httpx.Client(base_url=server.url, timeout=30)
display(client.get("/health").json(), client.get("/model").json())
"""),
    md("## Send requests"),
    code("""
import os
from imgcls.sample import sample_truth
from imgcls.images import iter_image_files
truth = sample_truth(ws) if ws.sample_labels_file.exists() else None
if truth is not None:  # pool images labelled since (notebooks 03-05) have moved into the library
    truth = truth[truth["path"].map(os.path.exists)]
paths = (list(truth.loc[truth["label"] != "", "path"][:N_REQUESTS]) if truth is not None
         else [p for _, p in zip(range(N_REQUESTS), iter_image_files(ws.unlabelled))])
answers = [client.post("/predict", files={"file": (p, open(p, "rb").read())}).json() for p in paths]
pd.DataFrame(answers).head()
"""),
    md("## A bad upload\nA 4xx with the reason, and a failed transaction in the log."),
    code("""
bad = client.post("/predict", files={"file": ("notes.jpg", b"<html>not an image</html>")})
bad.status_code, bad.json()
"""),
    md("## Manual evaluations\nA reviewer checks served predictions; on the sample the hidden labels play the reviewer."),
    code("""
from pathlib import Path
true_of = dict(zip(truth["path"], truth["label"])) if truth is not None else {}
for p, a in list(zip(paths, answers))[: max(1, len(paths) // 2)]:
    true = true_of.get(p)
    verdict = "unsure" if not true else ("correct" if true == a["class"] else "wrong")
    client.post("/evaluations", json={"transaction_id": a["transaction_id"], "verdict": verdict,
                                      "reviewer": "notebook-06", "true_class": true or None})
"""),
    md("## The log"),
    code("""
from imgcls.translog import TransactionLog
log = TransactionLog(ws)
display(log.transactions().tail(8))
display(log.evaluations().tail(5))
print(log.count(), "transactions logged")
"""),
    code("""
client.close()
server.stop()
predictor.close()
log.close()
"""),
]
