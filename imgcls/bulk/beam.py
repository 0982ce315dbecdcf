"""Bulk identification on Apache Beam: the same results table, on any Beam runner.

:func:`identify_beam` is :func:`imgcls.bulk.identify` for collections that
outgrow one process: the same listing, decoding, calibration, top-k and
table, computed by a Beam pipeline (``RunInference`` with the package's own
model handler, :class:`imgcls.bulk.beam_pipeline.RunModelHandler`) on
Beam's in-process runner (``FnApiRunner``, 2 workers, the default: no
download, no service) or on Dataflow, Flink or Spark
(``runner="DataflowRunner"`` plus their pipeline options). Needs the
``beam`` extra (``pip install 'imgcls[beam]'``).

**Sources.** Everything :func:`~imgcls.bulk.identify` takes (a local folder
at any depth, an image path, a list of paths, a DataFrame with ``path``),
listed on the launching machine exactly as locally (same files, same
``relpath``, links that are not followed in the errors table), plus a glob or
URL read through Beam's ``FileSystems`` and listed by the workers
(``"/data/pool/**"``, ``"gs://bucket/pool/**.jpg"``; ``*`` stops at ``/``,
``**`` does not; a URL ending in ``/`` means everything under it). A pattern
keeps the files with an image extension and no dot-named part below the
pattern's folder, as a folder listing does, and a symbolic link leading out of
that folder goes to the errors table unread.

**Output.** Parquet shards in the local table's schema
(:data:`~imgcls.bulk.RESULT_COLUMNS`, errors in ``_errors-*.parquet`` with the
same reasons), so :func:`~imgcls.bulk.load_results`,
:func:`~imgcls.bulk.load_errors`, the filters and the review grid read them
as they are. Rows come in shard order, not in path order (sort by ``path`` to
compare with a local table).

**One job, one folder; reruns replace.** A local job resumes under an
``fcntl`` lock; that lock does not exist across the machines of a
distributed runner, so a Beam job never resumes and never shares a folder:

* The job's key is a content hash of what decides its rows: the run's model
  file (sha256), temperature, classes, ``top_k`` and the source (the folder,
  pattern, or the sorted list of paths). The default output folder is
  ``bulk/<run_id>-<name>-beam-<key>.parquet``, so two different jobs never
  write into one folder and the same job always writes into the same one.
* Each row is a pure function of the image's bytes (its ``hash`` column)
  and the run, so running a job again gives the same rows (only ``time``
  differs): the job is idempotent by content hash.
* A rerun replaces its output: the pipeline writes into a staging folder
  (``_beam-<id>/`` inside the output, invisible to readers), and only when it
  has succeeded are the previous shards deleted and the new ones renamed
  into place; ``_meta.json`` then says ``complete``. A failed run leaves the
  previous output as it was (its staging folder is removed by the next run).
  Runners retry failed bundles themselves; a killed job is simply run again.
* An output folder holding another job (a local job, or a Beam job with
  another key) is refused unless ``overwrite=True``.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from imgcls.bulk.identify import Source, _slug, _source_items, _unfollowed_links
from imgcls.bulk.store import JobStore, errors_schema, load_results, results_schema
from imgcls.core import IMAGE_EXTENSIONS, Workspace, as_workspace, check_int, file_hash, isoformat
from imgcls.core.fileio import write_json
from imgcls.runs import load_run

if TYPE_CHECKING:  # pragma: no cover
    from imgcls.runs import Run

__all__ = ["identify_beam", "pipeline_options", "DEFAULT_RUNNER", "DEFAULT_WORKERS"]

#: Beam's in-process runner: no download (Beam's ``DirectRunner`` first tries to fetch a Prism binary).
DEFAULT_RUNNER = "FnApiRunner"
#: Workers of the in-process runner (threads in one process; ``--direct_running_mode=multi_processing``
#: gives processes, each importing TensorFlow).
DEFAULT_WORKERS = 2
#: Runners that run in this process and take ``--direct_*`` options.
_LOCAL_RUNNERS = ("FnApiRunner", "DirectRunner", "BundleBasedDirectRunner")
_STAGING_PREFIX = "_beam-"
_META_FILE = "_meta.json"
_PART = re.compile(r"^(part|_errors)-\d+\.parquet$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def _is_url(path: str) -> bool:
    return bool(_SCHEME.match(path))


# --------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------
def pipeline_options(runner: str = DEFAULT_RUNNER, beam_options: Sequence[str] | None = None) -> Any:
    """The ``PipelineOptions`` of a job: ``--runner`` plus the given flags.

    For Beam's local runners, ``--direct_num_workers=2`` and
    ``--direct_running_mode=multi_threading`` are added unless given.

    Args:
        runner: A Beam runner name (``"FnApiRunner"``, ``"DataflowRunner"``,
            ``"FlinkRunner"``, ``"SparkRunner"``, ...).
        beam_options: More pipeline flags, e.g. ``["--project=p", "--region=europe-west1",
            "--temp_location=gs://b/tmp"]``; a ``--runner`` here wins over ``runner``.

    Returns:
        An ``apache_beam.options.pipeline_options.PipelineOptions``.

    Raises:
        ValueError: ``runner`` is empty or a flag is not a string starting with ``--``.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    if not isinstance(runner, str) or not runner:
        raise ValueError(f"`runner` must be a Beam runner name, e.g. 'FnApiRunner'. Received: runner={runner!r}")
    flags = list(beam_options or [])
    for flag in flags:
        if not isinstance(flag, str) or not flag.startswith("--"):
            raise ValueError(
                "`beam_options` must be a list of pipeline flags such as '--direct_num_workers=4'. "
                f"Received an item {flag!r}"
            )
    given = {flag.split("=", 1)[0] for flag in flags}
    effective = next((f.split("=", 1)[1] for f in reversed(flags) if f.startswith("--runner=")), runner)
    defaults = [f"--runner={runner}"]
    if effective in _LOCAL_RUNNERS:
        if "--direct_num_workers" not in given:
            defaults.append(f"--direct_num_workers={DEFAULT_WORKERS}")
        if "--direct_running_mode" not in given:
            defaults.append("--direct_running_mode=multi_threading")
    return PipelineOptions(defaults + flags)


# --------------------------------------------------------------------------
# The source
# --------------------------------------------------------------------------
def _pattern(source: Any) -> tuple[str, str] | None:
    """(pattern, base folder) when ``source`` is a glob or a URL read by Beam, else None."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    text = os.fspath(source)
    if not _is_url(text) and (os.path.exists(os.path.expanduser(text)) or not any(c in text for c in "*?[")):
        return None
    if _is_url(text) and not any(c in text for c in "*?[") and text.endswith("/"):
        text += "**"
    if not _is_url(text):
        text = os.path.abspath(os.path.expanduser(text))
    prefix = re.match(r"^[^[*?]*", text).group(0)
    base = prefix if prefix.endswith("/") else posixpath.dirname(prefix)
    return text, base.rstrip("/")


def _image_item(path: str, base: str) -> list[tuple[str, str, int]]:
    """``[(path, relpath, 0)]`` for an image file found by a pattern, ``[]`` for anything else."""
    rel = path[len(base):].lstrip("/") if path.startswith(base) else posixpath.basename(path)
    if os.path.splitext(path)[1].lower() not in IMAGE_EXTENSIONS:
        return []
    if any(part.startswith(".") for part in rel.split("/")):
        return []
    return [(path, rel, 0)]


def _job_key(the_run: Run, k: int, spec: str) -> str:
    payload = {
        "run_id": the_run.run_id,
        "model_sha256": file_hash(the_run.model_path),
        "temperature": the_run.temperature,
        "classes": list(the_run.classes),
        "top_k": k,
        "source": spec,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------
# The output folder (local or any Beam filesystem)
# --------------------------------------------------------------------------
def _join(folder: str, name: str) -> str:
    return posixpath.join(folder, name) if _is_url(folder) else os.path.join(folder, name)


def _list(folder: str) -> list[str]:
    """Paths of the entries directly in ``folder`` (files, and folders for a local one)."""
    if not _is_url(folder):
        return [os.path.join(folder, n) for n in sorted(os.listdir(folder))] if os.path.isdir(folder) else []
    from apache_beam.io.filesystems import FileSystems

    found = FileSystems.match([_join(folder, "*")])[0].metadata_list
    return sorted({_join(folder, m.path[len(folder):].lstrip("/").split("/")[0]) for m in found})


def _delete(paths: list[str]) -> None:
    local = [p for p in paths if not _is_url(p)]
    for p in local:
        shutil.rmtree(p) if os.path.isdir(p) else Path(p).unlink(missing_ok=True)
    remote = [p for p in paths if _is_url(p)]
    if remote:
        from apache_beam.io.filesystems import FileSystems

        FileSystems.delete(remote)


def _read_meta(out: str) -> dict:
    if not _is_url(out):
        return JobStore(Path(out)).read_meta()
    from apache_beam.io.filesystems import FileSystems

    try:
        with FileSystems.open(_join(out, _META_FILE)) as fh:
            meta = json.loads(fh.read().decode("utf-8"))
    except Exception:  # noqa: BLE001 - missing or unreadable: no job there
        return {}
    return meta if isinstance(meta, dict) else {}


def _write_meta(out: str, meta: dict) -> None:
    if not _is_url(out):
        write_json(Path(out) / _META_FILE, meta)
        return
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(_join(out, _META_FILE)) as fh:
        fh.write(json.dumps(meta, indent=2, default=str).encode("utf-8"))


def _replace_output(out: str, staging: str) -> None:
    """Delete the previous shards of ``out``, then move the staged shards into place."""
    from apache_beam.io.filesystems import FileSystems

    old = [p for p in _list(out) if _PART.match(posixpath.basename(p))]
    new = [p for p in _list(staging) if _PART.match(posixpath.basename(p))]
    _delete(old)
    if new:
        FileSystems.rename(new, [_join(out, posixpath.basename(p)) for p in new])
    _delete([staging])


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


# --------------------------------------------------------------------------
# identify_beam
# --------------------------------------------------------------------------
def identify_beam(
    workspace: Workspace | str | os.PathLike,
    source: Source | None = None,
    *,
    run: Run | str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    top_k: int = 3,
    batch_size: int = 64,
    runner: str = DEFAULT_RUNNER,
    beam_options: Sequence[str] | None = None,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Identify many images with a trained run on an Apache Beam runner (same table as :func:`identify`).

    Args:
        workspace: The workspace: it resolves ``run`` and holds the default
            ``source`` and ``out``.
        source: As in :func:`~imgcls.bulk.identify` (a folder, an image path,
            a list of paths, a DataFrame with ``path``), or a glob or URL read
            through Beam's FileSystems (``"gs://bucket/pool/**"``). Defaults to
            the workspace's ``unlabelled/``.
        run: A :class:`imgcls.runs.Run`, run folder, run id, ``"production"``
            or ``"latest"``; ``None`` for the production run. On a cluster the
            run folder must be readable at the same path by every worker.
        out: The results folder (local, or a URL on a Beam filesystem); defaults
            to ``<workspace>/bulk/<run_id>-<name>-beam-<key>.parquet`` (the
            job's content key, see the module notes).
        top_k: Choices recorded per image (capped at the run's class count).
        batch_size: Images per model call.
        runner: The Beam runner (default the in-process ``FnApiRunner`` with 2 workers).
        beam_options: More pipeline flags (see :func:`pipeline_options`).
        overwrite: Replace an ``out`` that holds another job (a local job, or
            a Beam job with another key). The same job is always replaced.

    Returns:
        The results table (:data:`~imgcls.bulk.RESULT_COLUMNS`, in shard
        order) read back with :func:`~imgcls.bulk.load_results`; ``attrs``
        also holds ``engine`` ("beam"), ``job_key``, ``runner`` and
        ``n_results``. For an ``out`` on a remote filesystem nothing is read
        back: the frame is empty and ``attrs`` holds the counts.

    Raises:
        ValueError: For invalid options, or an ``out`` holding another job
            (pass another ``out`` or ``overwrite=True``).
        FileNotFoundError: If the workspace, a local ``source`` or the run does not exist.
        ImportError: Apache Beam is not installed (the ``beam`` extra).

    Example:
        >>> results = identify_beam(ws, "/data/pool/**", run="production")
        >>> look_alike(results, "cow", min_score=0.3, max_score=0.7)
    """
    top_k = check_int(top_k, "top_k")
    batch_size = check_int(batch_size, "batch_size")
    options = pipeline_options(runner, beam_options)
    try:
        import apache_beam  # noqa: F401
    except ImportError as err:  # pragma: no cover - the extra is part of make test
        raise ImportError(
            "identify_beam needs Apache Beam: pip install 'imgcls[beam]' (or use identify(), the local engine)."
        ) from err
    ws = as_workspace(workspace)
    the_run = load_run("production" if run is None else run, workspace=ws)
    if source is None:
        source = ws.unlabelled
    pattern = _pattern(source)
    if pattern is not None:
        items, links, spec = None, [], "pattern:" + pattern[0]
        name = _slug(Path(pattern[1]).name or "pattern")
        shown_source = pattern[0]
    else:
        paths, rels, turns, name = _source_items(source)
        keep, seen = [], set()
        for i, p in enumerate(paths):  # each path once, as locally
            if p not in seen:
                seen.add(p)
                keep.append(i)
        items = [(paths[i], rels[i], 0 if turns is None else int(turns[i])) for i in keep]
        links = [(link, rel, reason) for link, rel, reason in _unfollowed_links(source) if link not in seen]
        spec = "paths:" + hashlib.sha256(
            json.dumps(sorted((p, r, t) for p, r, t in items)).encode("utf-8", "surrogateescape")).hexdigest()
        shown_source = os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"{len(items)} paths"
    classes = list(the_run.classes)
    k_eff = min(top_k, len(classes))
    key = _job_key(the_run, k_eff, spec)
    if out is None:
        out = ws.bulk / f"{the_run.run_id}-{name}-beam-{key[:12]}.parquet"
    out_s = os.fspath(out)
    local_out = not _is_url(out_s)
    if local_out:
        out_s = os.path.abspath(os.path.expanduser(out_s))
        store = JobStore(Path(out_s))
        store.create()
        lock = store.lock()
    else:
        lock = _NoLock()
    size = the_run.config.get("input_shape") or list(the_run.model.input_shape[1:])
    image_size = (int(size[0]), int(size[1]))
    model_name = str(the_run.config.get("model") or "")

    with lock:
        meta = _read_meta(out_s)
        has_parts = any(_PART.match(posixpath.basename(p)) for p in _list(out_s))
        if (has_parts or meta) and meta.get("job_key") != key and not overwrite:
            what = (f"Beam job {str(meta.get('job_key'))[:12]!r}" if meta.get("engine") == "beam"
                    else "a local identify job")
            raise ValueError(
                f"{out_s!r} holds {what}, not this Beam job ({key[:12]!r}): a Beam job writes its own "
                "folder. Pass another `out`, leave `out` to its default, or overwrite=True to replace it."
            )
        _delete([p for p in _list(out_s) if posixpath.basename(p).startswith(_STAGING_PREFIX)])
        meta = {
            "engine": "beam",
            "runner": options.get_all_options()["runner"],
            "job_key": key,
            "run_id": the_run.run_id,
            "model": model_name,
            "k": k_eff,
            "classes": classes,
            "temperature": the_run.temperature,
            "source": shown_source,
            "created": isoformat(),
            "updated": isoformat(),
            "n_requested": None if items is None else len(items),
            "complete": False,
        }
        _write_meta(out_s, meta)
        staging = _join(out_s, f"{_STAGING_PREFIX}{uuid.uuid4().hex[:12]}")
        counts = _run_pipeline(
            options, the_run, items=items, pattern=pattern, links=links, staging=staging, top_k=k_eff,
            image_size=image_size, model_name=model_name, batch_size=batch_size,
        )
        _replace_output(out_s, staging)
        meta.update(updated=isoformat(), complete=True, **counts)
        _write_meta(out_s, meta)
    if local_out:
        df = load_results(out_s)
    else:
        df = results_schema(k_eff).empty_table().to_pandas()
        df.attrs = {"results_path": out_s, "n_errors": counts["n_errors"]}
    df.attrs.update(engine="beam", job_key=key, runner=meta["runner"], n_results=counts["n_results"])
    return df


def _run_pipeline(options: Any, the_run: Run, *, items: list | None, pattern: tuple[str, str] | None,
                  links: list, staging: str, top_k: int, image_size: tuple[int, int], model_name: str,
                  batch_size: int) -> dict:
    """Build and run the pipeline into ``staging``; the job's counts."""
    import apache_beam as beam
    from apache_beam.io import fileio, parquetio
    from apache_beam.ml.inference.base import RunInference

    from imgcls.bulk.beam_pipeline import ERRORS_TAG, METRICS_NAMESPACE, DecodeBatch, RunModelHandler, error_row

    handler = RunModelHandler(
        str(the_run.path), classes=list(the_run.classes), top_k=top_k, temperature=the_run.temperature,
        image_size=image_size, model_name=model_name, run_id=the_run.run_id,
    )
    link_rows = [error_row(p, r, reason, the_run.run_id) for p, r, reason in links]
    pipeline = beam.Pipeline(options=options)
    if pattern is None:
        files = pipeline | "List" >> beam.Create(items)
    else:
        files = (
            pipeline
            | "Match" >> fileio.MatchFiles(pattern[0], empty_match_treatment=fileio.EmptyMatchTreatment.ALLOW)
            | "Images" >> beam.FlatMap(_matched_item, pattern[1])
            | "Spread" >> beam.Reshuffle()
        )
    root = pattern[1] if pattern is not None and not _is_url(pattern[0]) else None
    decoded = (
        files
        | "Batch" >> beam.BatchElements(min_batch_size=batch_size, max_batch_size=batch_size)
        | "Decode" >> beam.ParDo(DecodeBatch(image_size, the_run.run_id, root=root)).with_outputs(ERRORS_TAG, main="images")
    )
    (
        decoded.images
        | "Identify" >> RunInference(handler.with_no_batching())
        | "Rows" >> beam.Map(_inference)
        | "WriteResults" >> parquetio.WriteToParquet(
            _join(staging, "part"), results_schema(top_k), file_name_suffix=".parquet",
            shard_name_template="-SSSSS")
    )
    errors = [decoded[ERRORS_TAG]]
    if link_rows:
        errors.append(pipeline | "Links" >> beam.Create(link_rows))
    (
        errors | "AllErrors" >> beam.Flatten()
        | "WriteErrors" >> parquetio.WriteToParquet(
            _join(staging, "_errors"), errors_schema(), file_name_suffix=".parquet",
            shard_name_template="-SSSSS")
    )
    result = pipeline.run()
    result.wait_until_finish()
    n_errors = _counter(result, METRICS_NAMESPACE, "unreadable") + len(link_rows)
    n_results = _counter(result, METRICS_NAMESPACE, "identified")
    return {"n_results": n_results, "n_errors": n_errors}


def _matched_item(metadata: Any, base: str) -> list[tuple[str, str, int]]:
    return _image_item(metadata.path, base)


def _inference(result: Any) -> dict:
    return result.inference


def _counter(result: Any, namespace: str, name: str) -> int:
    from apache_beam.metrics.metric import MetricsFilter

    try:
        found = result.metrics().query(MetricsFilter().with_namespace(namespace).with_name(name))["counters"]
    except Exception:  # noqa: BLE001 - a runner without metrics: counts unknown
        return -1
    return int(sum(c.committed if c.committed is not None else c.attempted for c in found))
