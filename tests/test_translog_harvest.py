"""imgcls.translog.harvest: kept, judged served images filed into the library as one undoable batch,
deduplicated by content, skipping bad class names and inputs no longer stored."""

from __future__ import annotations

import pytest
from serving_support import CLASSES, png_bytes, ws  # noqa: F401 - fixtures

from imgcls.cli import main
from imgcls.core import file_hash
from imgcls.library import Library
from imgcls.serving import Predictor
from imgcls.translog import TransactionLog, harvest


@pytest.fixture(scope="module")
def judged(ws):
    """Served and judged inputs of every kind harvest meets: {name: transaction id}."""
    workspace, first, _ = ws
    lib = Library(workspace)
    in_library = lib.scan().iloc[0]
    ids = {}
    with Predictor(workspace, run=first.run_id, keep_inputs=True) as p:
        served = {name: p.predict(png_bytes(seed=seed)) for name, seed in
                  (("correct", 101), ("wrong", 102), ("new", 103), ("unsure", 104), ("no_class", 105),
                   ("bad_name", 106), ("gone", 107))}
        served["again"] = p.predict(png_bytes(seed=101))  # the same image as "correct"
        with open(in_library["path"], "rb") as fh:
            served["known"] = p.predict(fh.read())  # already in the library
        ids = {name: r["transaction_id"] for name, r in served.items()}
        other = {name: next(c for c in CLASSES if c != r["class"]) for name, r in served.items()}
        p.record_verdict(ids["correct"], "correct", reviewer="ana")
        p.record_verdict(ids["again"], "correct", reviewer="ana")
        p.record_verdict(ids["known"], "wrong", reviewer="ana", true_class=other["known"])
        p.record_verdict(ids["wrong"], "wrong", reviewer="ana", true_class=other["wrong"])
        p.record_verdict(ids["new"], "wrong", reviewer="ana", true_class="okapi", new_class=True)
        p.record_verdict(ids["unsure"], "unsure", reviewer="ana")
        p.record_verdict(ids["no_class"], "wrong", reviewer="ana")
        p.record_verdict(ids["gone"], "correct", reviewer="ana")
    with TransactionLog(workspace) as log:  # written past the serving rules, as an old log could hold
        log.log_evaluation(ids["bad_name"], "wrong", reviewer="ana", true_class="../../etc")
    (workspace.root / served["gone"]["image_path"]).unlink()  # purged since
    labels = {name: (r["class"] if name in ("correct", "again", "gone") else other[name])
              for name, r in served.items()}
    labels["new"] = "okapi"
    return ids, labels, served


def test_harvest_dry_run_then_files_one_batch_and_undo(ws, judged, capsys):
    workspace, _, _ = ws
    ids, labels, served = judged
    lib = Library(workspace)
    before = set(lib.scan()["hash"])
    journal_before = len(lib.journal())

    plan = harvest(workspace, dry_run=True)
    assert plan.attrs["added"] == 3 and plan.attrs["batch"] is None
    assert len(lib.journal()) == journal_before  # nothing moved

    out = harvest(workspace).set_index("transaction_id")
    expect = {"correct": ("added", ""), "wrong": ("added", ""), "new": ("added", ""),
              "again": ("skipped", "duplicate"), "known": ("skipped", "duplicate"),
              "unsure": ("skipped", "no_true_class"), "no_class": ("skipped", "no_true_class"),
              "gone": ("skipped", "missing")}
    for name, (action, reason) in expect.items():
        row = out.loc[ids[name]]
        assert (row["action"], row["reason"]) == (action, reason), name
    bad = out.loc[ids["bad_name"]]
    assert bad["action"] == "skipped" and bad["reason"].startswith("bad_class")
    assert set(out.attrs["bad_classes"]) == {"../../etc"}
    for name in ("correct", "wrong", "new"):
        new_path = out.loc[ids[name], "new_path"]
        assert f"/library/{labels[name]}/" in new_path
        assert file_hash(new_path) == served[name]["image_hash"]
    batch = out.attrs["batch"]
    journal = Library(workspace).journal()
    assert set(journal["batch"].iloc[journal_before:]) == {batch}  # one batch
    assert set(Library(workspace).scan()["hash"]) - before == {served[n]["image_hash"]
                                                              for n in ("correct", "wrong", "new")}
    # a second harvest finds them in the library already
    again = harvest(workspace)
    assert again.attrs["added"] == 0 and again.attrs["batch"] is None

    Library(workspace).undo(1)  # one undo takes the whole harvest back
    assert set(Library(workspace).scan()["hash"]) == before
    assert not (workspace.library / "okapi").exists() or not any((workspace.library / "okapi").iterdir())

    assert main(["log", "harvest", "-w", str(workspace.root), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "would add 3 judged served image(s)" in text and "'../../etc' refused" in text
