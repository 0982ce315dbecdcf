"""Live reload: a server following runs/production.json swaps models after promote and rollback,
while clients keep sending requests; no request fails and every row names the model that answered."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from serving_support import png_bytes, read_log, upload, ws  # noqa: F401 - fixtures

from imgcls.cli import main
from imgcls.evaluation import promote
from imgcls.runs import production_run_id
from imgcls.serving import Predictor, start_server


def wait_for_run(client, run_id, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = client.get("/model").json()
        if info["run_id"] == run_id:
            return info
        time.sleep(0.1)
    raise AssertionError(f"the server did not swap to {run_id} within {timeout} s")


def test_reload_after_promote_and_rollback_under_load(ws):
    workspace, first, second = ws
    assert production_run_id(workspace) == first.run_id
    answers: list[tuple[int, dict]] = []
    stop = threading.Event()

    with Predictor(workspace, follow_production=True, reload_interval=0.1,
                   batch_inference=True) as p, start_server(p) as srv:
        assert p.info()["follows_production"]

        def client_loop(i):
            with httpx.Client(base_url=srv.url, timeout=120) as c:
                while not stop.is_set():
                    r = upload(c, png_bytes(seed=i))
                    answers.append((r.status_code, r.json()))

        threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        try:
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                time.sleep(0.5)
                assert promote(workspace, second, override="reload test").accepted
                info = wait_for_run(c, second.run_id)
                assert info["model_version"] == "v2" and p.follower.reloads == 1
                time.sleep(0.5)
                assert main(["rollback", "-w", str(workspace.root), "--reason", "reload test"]) == 0
                info = wait_for_run(c, first.run_id)
                assert info["model_version"] == "v1" and p.follower.reloads == 2
                time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join(120)

    assert answers and all(status == 200 for status, _ in answers), \
        [body for status, body in answers if status != 200][:3]
    served_by = {body["run_id"] for _, body in answers}
    assert served_by == {first.run_id, second.run_id}  # both models answered
    log = read_log(workspace)
    for _, body in answers:  # every row names the model that answered
        row = log.loc[body["transaction_id"]]
        assert (row["run_id"], row["model_version"]) == (body["run_id"], body["model_version"])
    assert {body["model_version"] for _, body in answers} == {"v1", "v2"}


def test_explicit_reload_and_a_pinned_predictor(ws):
    workspace, first, second = ws
    with Predictor(workspace, run=first.run_id) as p:
        assert p.follower is None and not p.info()["follows_production"]
        assert p.reload(first.run_id) is False  # already served
        assert p.reload(second.run_id) is True
        assert p.run_id == second.run_id and p.predict(png_bytes(seed=3))["run_id"] == second.run_id
        with pytest.raises(ValueError):
            p.reload("no-such-run")
        assert p.run_id == second.run_id  # a failed load keeps the old model
