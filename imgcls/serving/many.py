"""Many images at once from Python: :meth:`Predictor.predict_many <imgcls.serving.Predictor.predict_many>`.

Images are decoded one by one (within the predictor's decode budget), run
through the model in batches, and logged one commit per batch. Unreadable
images do not stop the batch: they are logged as failed transactions and
reported in the result.
"""

from __future__ import annotations

import time as _time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imgcls.core import ImageError, check_int, utcnow
from imgcls.serving.budget import Overloaded
from imgcls.serving.records import LogWriteError, as_utc
from imgcls.serving.uploads import upload_digest

if TYPE_CHECKING:  # pragma: no cover
    from imgcls.serving.predictor import Predictor

__all__ = ["predict_many"]

_COLUMNS = ["transaction_id", "status", "error", "class", "score", "predictions",
            "latency_ms", "image_hash", "image_path", "time"]


def predict_many(predictor: "Predictor", images: Iterable[Any], *, top_k: int | None = None,
                 source: str | None = None, times: Sequence[Any] | None = None,
                 simulated: bool = False, batch_size: int = 64) -> pd.DataFrame:
    """See :meth:`Predictor.predict_many <imgcls.serving.Predictor.predict_many>`."""
    k = predictor.top_k if top_k is None else check_int(top_k, "top_k")
    batch_size = check_int(batch_size, "batch_size")
    source = source or predictor.source
    images = list(images)
    if times is not None:
        times = list(times)
        if len(times) != len(images):
            raise ValueError(
                f"`times` must have one time per image: {len(images)} images, "
                f"{len(times)} times."
            )
    rows: list[dict] = []
    model = predictor.served  # one model for the whole call
    with model.hold():
        for first in range(0, len(images), batch_size):
            chunk = images[first:first + batch_size]
            whens = [utcnow() if times is None else as_utc(times[first + i], "times")
                     for i in range(len(chunk))]
            out = _decode_chunk(predictor, model, chunk, whens)
            decoded = [item.pop("pixels") for item in out if item["ok"]]
            share = 0.0
            if decoded:
                t0 = _time.perf_counter()
                probs = model.infer(np.stack(decoded))
                share = (_time.perf_counter() - t0) * 1000 / len(decoded)
            j = 0
            records = []
            for item in out:
                item["latency"] = item["decode_ms"]
                if item["ok"]:
                    item["top"], item["raw"] = model.ranked(probs[j], k)
                    item["latency"] += share
                    j += 1
                records.append(predictor.requests.row(  # a failed item has no top / path, an ok one no error
                    model, top_k=item.get("top"), raw_score=item.get("raw"), image_hash=item["hash"],
                    latency_ms=item["latency"], source=source, image_path=item.get("path"),
                    error=item.get("error"), simulated=simulated, when=item["when"]))
            ids = _write_batch(predictor, records, len(rows))
            rows.extend(_result_row(item, tid) for item, tid in zip(out, ids))
    df = pd.DataFrame(rows, columns=_COLUMNS)
    df["transaction_id"] = df["transaction_id"].astype("Int64")
    df["score"] = df["score"].astype(float)
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df


def _decode_chunk(predictor: "Predictor", model: Any, chunk: list, whens: list) -> list[dict]:
    out = []
    for image, when in zip(chunk, whens):
        t0 = _time.perf_counter()
        try:
            pixels, digest, kept, _ = predictor._decode(image, when, model, None)
            out.append({"ok": True, "pixels": pixels, "hash": digest, "path": kept,
                        "decode_ms": (_time.perf_counter() - t0) * 1000, "when": when})
        except ImageError as err:
            out.append({"ok": False, "hash": upload_digest(image, err),
                        "error": f"{err.kind}: {err.reason}",
                        "decode_ms": (_time.perf_counter() - t0) * 1000, "when": when})
        except Overloaded as exc:  # the server's decodes held the memory too long
            out.append({"ok": False, "hash": None, "error": f"overloaded: {exc}",
                        "decode_ms": (_time.perf_counter() - t0) * 1000, "when": when})
    return out


def _write_batch(predictor: "Predictor", records: list[dict], done: int) -> list[int | None]:
    if predictor.log is None:
        return [None] * len(records)
    try:
        return list(predictor.log.log_transactions(records))
    except Exception as exc:  # noqa: BLE001
        raise LogWriteError(
            f"The transaction log {predictor.log.where!r} could not be written "
            f"({type(exc).__name__}: {exc}); {done} earlier predictions are "
            "logged, this batch is not."
        ) from exc


def _result_row(item: dict, tid: int | None) -> dict:
    top = item.get("top") or []
    return {
        "transaction_id": tid,
        "status": "ok" if item["ok"] else "failed",
        "error": "" if item["ok"] else item["error"],
        "class": top[0]["class"] if top else "",
        "score": top[0]["score"] if top else np.nan,
        "predictions": top,
        "latency_ms": round(item["latency"], 3),
        "image_hash": item["hash"] or "",
        "image_path": "" if not item.get("path") else str(item["path"]),
        "time": item["when"],
    }
