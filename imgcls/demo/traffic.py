"""Simulated serving traffic: weeks of requests and manual evaluations for the demo and reports.

:func:`simulate_traffic` replays the sample's unlabelled pool through a
:class:`~imgcls.serving.Predictor` (in-process, batched) or a running server
(over HTTP, the request times in the
:data:`~imgcls.serving.SIMULATED_TIME_HEADER` header) over several simulated
weeks and one or more model versions, and records manual evaluations from
the hidden labels, all marked ``simulated`` so reports can tell demo data
from real traffic.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core import (
    Workspace,
    as_workspace,
    check_fraction,
    check_int,
    check_number,
    isoformat,
    utcnow,
)
from imgcls.runs import Run, load_run, promoted_run_ids, version_label
from imgcls.sample import sample_truth
from imgcls.serving import SIMULATED_TIME_HEADER, Predictor
from imgcls.translog import TransactionLog, to_utc_micros

__all__ = ["simulate_traffic"]

#: The ``source`` logged for simulated requests.
SIMULATED_SOURCE = "simulated"
#: The reviewer of simulated evaluations.
SIMULATED_REVIEWER = "simulated-reviewer"


def _multipart(data: bytes, filename: str) -> tuple[bytes, str]:
    boundary = secrets.token_hex(16)
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
        f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _http_json(url: str, *, body: bytes, content_type: str, headers: dict, timeout: float = 60.0):
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": content_type, **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        try:
            payload = json.loads(err.read() or b"{}")
        except ValueError:
            payload = {"detail": str(err)}
        return err.code, payload


def _traffic_plan(n_days: int, total: int, growth: float, rng: np.random.Generator) -> np.ndarray:
    """Requests per day: a linear ramp times a weekly pattern (quieter weekends)."""
    ramp = np.linspace(1.0, growth, n_days) if n_days > 1 else np.ones(1)
    weekday = np.array([1.0, 1.05, 1.05, 1.0, 0.95, 0.55, 0.45])
    weights = ramp * np.resize(weekday, n_days)
    return rng.multinomial(total, weights / weights.sum())


def _base_urls(via: "str | Sequence[str]", n_runs: int) -> list[str] | None:
    """The server base URL of each run, or None to replay through in-process predictors."""
    if isinstance(via, str) and via != "predictor":
        urls: list[str] | None = [via] * n_runs if n_runs == 1 else None
        if urls is None:
            raise ValueError(
                f"Through HTTP each run needs its own server: pass one base URL per run, "
                f"via=[url_for_run1, ...] ({n_runs} runs). Received: via={via!r}"
            )
    elif isinstance(via, str):
        return None
    else:
        urls = [str(u) for u in via]
        if len(urls) != n_runs or not all(u.startswith(("http://", "https://")) for u in urls):
            raise ValueError(
                "`via` must be 'predictor', a base URL, or one base URL per run "
                f"({n_runs} runs). Received: via={via!r}"
            )
    urls = [u.rstrip("/") for u in urls]
    if not all(u.startswith(("http://", "https://")) for u in urls):
        raise ValueError(f"`via` must be 'predictor' or an http:// base URL. Received: via={via!r}")
    return urls


def simulate_traffic(
    workspace: Workspace | str | os.PathLike,
    *,
    runs: Sequence["Run | str"] | None = None,
    weeks: int = 8,
    requests_per_day: float = 36.0,
    requests: int | None = None,
    growth: float = 2.0,
    evaluation_share: float = 0.1,
    unsure_share: float = 0.05,
    seed: int = 0,
    via: "str | Sequence[str]" = "predictor",
    end: Any = None,
    versions: Sequence[str] | None = None,
    batch_size: int = 64,
) -> pd.DataFrame:
    """Replay the sample pool as several weeks of served traffic with manual evaluations.

    The weeks are split evenly between ``runs`` in order (the first run
    serves the first weeks, then the next one is rolled out). Each day gets
    a number of requests that grows over the period (``growth``) and dips on
    weekends; request times are spread over the day's working hours. Images
    are drawn (with replacement) from the sample's unlabelled pool, bad files
    included, so a few requests fail as real ones do. For a share of the
    successful requests a simulated reviewer records a verdict from the
    hidden true label (``correct`` / ``wrong`` with the true class, a few
    ``unsure``), some hours to days after the request. Everything is logged
    with ``simulated=True`` and source ``"simulated"``.

    Args:
        workspace: The sample workspace (it needs ``unlabelled_truth.csv``).
        runs: The runs to roll out in order (Run objects or refs); default
            ``["production"]``. Two runs give "v1 then v2". Each must have
            been promoted once (a run the gate refused never served, so it
            is never replayed); through HTTP the server decides.
        weeks: Simulated weeks, ending at ``end``.
        requests_per_day: Average requests per day over the period.
        requests: Exact total number of requests (overrides ``requests_per_day``).
        growth: Usage on the last day relative to the first.
        evaluation_share: Share of successful requests that get a verdict.
        unsure_share: Share of those verdicts that are ``"unsure"``.
        seed: Random seed (which images, times, evaluations).
        via: ``"predictor"`` (in-process, batched: fast) or the base URL of a
            running server (``"http://127.0.0.1:8000"``) started with
            ``allow_simulated=True``; with several runs, one URL per run.
        end: End of the simulated period (exclusive); default today 00:00 UTC.
        versions: Version labels logged for ``runs`` (default: each run's
            label, e.g. from the production pointer, else ``v1``, ``v2``, ...
            in rollout order). Ignored through HTTP (the server decides).
        batch_size: Images per model call and per commit (predictor mode).

    Returns:
        One row per request, by time: transaction_id, time, run_id,
        model_version, image_path, true_class, status, predicted, score,
        evaluated (bool), verdict ("" when not evaluated).
    """
    ws = as_workspace(workspace)
    weeks = check_int(weeks, "weeks")
    batch_size = check_int(batch_size, "batch_size")
    evaluation_share = check_fraction(evaluation_share, "evaluation_share")
    unsure_share = check_fraction(unsure_share, "unsure_share")
    growth = check_number(growth, "growth", 0, low_open=True)
    n_days = weeks * 7
    if requests is None:
        requests_per_day = check_number(requests_per_day, "requests_per_day", 0, low_open=True)
        requests = int(round(requests_per_day * n_days))
    requests = check_int(requests, "requests")
    runs = ["production"] if runs is None else list(runs)
    if not runs:
        raise ValueError("`runs` must name at least one run. Received: runs=[]")
    urls = _base_urls(via, len(runs))
    if versions is not None and len(versions) != len(runs):
        raise ValueError(
            f"`versions` must give one label per run ({len(runs)} runs). Received: versions={versions!r}"
        )

    truth = sample_truth(ws)
    # Pool images already labelled into the library (moved away) are not traffic.
    truth = truth[[os.path.exists(p) for p in truth["path"]]].reset_index(drop=True)
    if truth.empty:
        raise ValueError(f"The sample pool of {str(ws.root)!r} is empty; nothing to replay.")
    rng = np.random.default_rng(seed)
    end_t = (utcnow().replace(hour=0, minute=0, second=0, microsecond=0) if end is None
             else pd.Timestamp(to_utc_micros(end, name="end"), unit="us", tz="UTC").to_pydatetime())
    start_t = end_t - _dt.timedelta(days=n_days)
    per_day = _traffic_plan(n_days, requests, float(growth), rng)
    times, days = [], []
    for day, count in enumerate(per_day):
        # Working hours, busiest around midday.
        hours = rng.normal(13.0, 3.0, size=count)
        outside = (hours < 6.0) | (hours > 22.0)
        hours[outside] = rng.uniform(7.0, 20.0, size=int(outside.sum()))
        for h in np.sort(hours):
            times.append(start_t + _dt.timedelta(days=day, hours=float(h)))
            days.append(day)
    days = np.asarray(days)
    picks = rng.integers(0, len(truth), size=len(times))
    image_paths = truth["path"].to_numpy()[picks]
    true_labels = truth["label"].to_numpy()[picks]
    segment = np.minimum(days * len(runs) // n_days, len(runs) - 1)

    labels: list[str | None] = [None] * len(runs)
    loaded: list[Run | None] = [None] * len(runs)
    if urls is None:
        loaded = [load_run(ref, workspace=ws) for ref in runs]
        promoted = set(promoted_run_ids(ws))
        never = [run.run_id for run in loaded if run.run_id not in promoted]
        if never:
            raise ValueError(
                f"Simulated traffic replays what production served, so every run must have been promoted. "
                f"Never promoted: {', '.join(never)} (refused by the deploy gate, or never put to it). "
                f"Promoted runs of {str(ws.root)!r}: {', '.join(sorted(promoted)) or 'none'}. "
                "Fix: leave those runs out, or promote them first (`imgcls promote RUN`)."
            )
        labels = [str(v) for v in versions] if versions is not None else [
            version_label(ws, run.run_id) for run in loaded]
        for i, run in enumerate(loaded):
            # A run never promoted is labelled by its rollout order when that is free.
            if labels[i] == run.run_id and f"v{i + 1}" not in labels:
                labels[i] = f"v{i + 1}"

    frames = []
    with TransactionLog(ws) as log:
        for i, ref in enumerate(runs):
            idx = np.flatnonzero(segment == i)
            if len(idx) == 0:
                continue
            seg_times = [times[j] for j in idx]
            if urls is None:
                predictor = Predictor(ws, run=loaded[i], log=log, source=SIMULATED_SOURCE,
                                      model_version=labels[i])
                try:
                    result = predictor.predict_many(
                        list(image_paths[idx]), times=seg_times, simulated=True,
                        batch_size=batch_size)
                finally:
                    predictor.close()
                result["run_id"] = predictor.run_id
                result["model_version"] = predictor.model_version
            else:
                result = _replay_http(urls[i], list(image_paths[idx]), seg_times)
            result["image_path"] = list(image_paths[idx])
            result["true_class"] = list(true_labels[idx])
            frames.append(result)
        out = pd.concat(frames, ignore_index=True)
        out = out.rename(columns={"class": "predicted"})

        # Manual evaluations of a share of the successful requests.
        ok = np.flatnonzero((out["status"] == "ok").to_numpy() & (out["true_class"] != "").to_numpy())
        chosen = ok[rng.random(len(ok)) < evaluation_share]
        out["evaluated"] = False
        out["verdict"] = ""
        records = []
        for j in chosen:
            row = out.iloc[j]
            delay = _dt.timedelta(hours=float(rng.exponential(20.0)) + 0.25)
            when = min(row["time"].to_pydatetime() + delay, end_t - _dt.timedelta(seconds=1))
            if rng.random() < unsure_share:
                verdict, true_class = "unsure", None
            else:
                verdict = "correct" if row["predicted"] == row["true_class"] else "wrong"
                true_class = row["true_class"]
            records.append({"transaction_id": int(row["transaction_id"]), "verdict": verdict,
                            "reviewer": SIMULATED_REVIEWER, "true_class": true_class,
                            "time": when, "simulated": True})
            out.iat[j, out.columns.get_loc("evaluated")] = True
            out.iat[j, out.columns.get_loc("verdict")] = verdict
        if urls is None:
            known = {run.run_id: set(run.classes) for run in loaded}
            by_run = dict(zip(out["transaction_id"].astype("Int64"), out["run_id"]))
            for rec in records:  # a pool class the model does not know is flagged as new
                cls = rec["true_class"]
                rec["new_class"] = cls is not None and cls not in known.get(by_run.get(rec["transaction_id"]), ())
            log.log_evaluations(records)
        else:
            _evaluate_http(urls, out, records)
    columns = ["transaction_id", "time", "run_id", "model_version", "image_path", "true_class",
               "status", "predicted", "score", "evaluated", "verdict"]
    return out[columns].sort_values(["time", "transaction_id"], kind="stable").reset_index(drop=True)


def _replay_http(url: str, paths: list[str], times: list[_dt.datetime], *, workers: int = 4) -> pd.DataFrame:
    def one(item):
        path, when = item
        with open(path, "rb") as fh:
            data = fh.read()
        body, ctype = _multipart(data, Path(path).name)
        status, payload = _http_json(f"{url}/predict", body=body, content_type=ctype,
                                     headers={SIMULATED_TIME_HEADER: isoformat(when)})
        if status >= 500 or (status != 200 and payload.get("transaction_id") is None):
            raise RuntimeError(f"{url}/predict answered {status}: {payload.get('detail', payload)}")
        return {
            "transaction_id": payload.get("transaction_id"),
            "status": "ok" if status == 200 else "failed",
            "error": "" if status == 200 else str(payload.get("detail", "")),
            "class": payload.get("class", ""),
            "score": payload.get("score", np.nan),
            "run_id": payload.get("run_id", ""),
            "model_version": payload.get("model_version", ""),
            "time": when,
        }

    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(one, zip(paths, times)))
    df = pd.DataFrame(rows)
    if (df["run_id"] == "").any():
        info = json.loads(urllib.request.urlopen(f"{url}/model", timeout=30).read())
        df.loc[df["run_id"] == "", "run_id"] = info["run_id"]
        df.loc[df["model_version"] == "", "model_version"] = info["model_version"]
    df["transaction_id"] = df["transaction_id"].astype("Int64")
    df["score"] = df["score"].astype(float)
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df


def _evaluate_http(urls: list[str], out: pd.DataFrame, records: list[dict]) -> None:
    by_run = dict(zip(out["transaction_id"].astype("Int64"), out["run_id"]))
    run_url, classes = {}, {}
    for url in urls:
        info = json.loads(urllib.request.urlopen(f"{url}/model", timeout=30).read())
        run_url[info["run_id"]] = url
        classes[url] = set(info["classes"])
    for rec in records:
        url = run_url.get(by_run.get(rec["transaction_id"]), urls[0])
        fields = {k: rec[k] for k in ("transaction_id", "verdict", "reviewer", "true_class")}
        # a pool class the model does not know is flagged as new (the server checks the rest)
        fields["new_class"] = rec["true_class"] is not None and rec["true_class"] not in classes[url]
        body = json.dumps(fields).encode()
        status, payload = _http_json(f"{url}/evaluations", body=body, content_type="application/json",
                                     headers={SIMULATED_TIME_HEADER: isoformat(rec["time"])})
        if status != 201:
            raise RuntimeError(f"{url}/evaluations answered {status}: {payload.get('detail', payload)}")
