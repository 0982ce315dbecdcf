"""Damaged run folders: listed with their reason instead of breaking the listing; a garbage model file
says so; classes.json is bound to the model."""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from imgcls.core import open_workspace
from imgcls.runs import CLASSES_HASH_KEY, Run, classes_digest, list_runs, load_run, run_problem, save_run
from test_runs import CLASSES, save, tiny_model


@pytest.fixture(scope="module")
def runs_ws(tmp_path_factory):
    ws = open_workspace(tmp_path_factory.mktemp("damaged") / "ws")
    good = save(ws, run_id="20260101-000000-tiny-g1-good")
    return ws, good


def test_save_run_binds_the_class_list_to_the_model(runs_ws):
    _, good = runs_ws
    assert good.config[CLASSES_HASH_KEY] == classes_digest(CLASSES)
    assert run_problem(good.path) == ""
    assert good.load_model(compile=False).output_shape[-1] == len(CLASSES)


def test_a_damaged_run_is_listed_with_its_reason(runs_ws, tmp_path):
    ws, good = runs_ws
    bad = ws.runs / "20260102-000000-tiny-g1-list"
    bad.mkdir()
    (bad / "config.json").write_text("[1, 2, 3]")  # a JSON list: used to crash the whole listing
    (bad / "classes.json").write_text(json.dumps(CLASSES))
    (bad / "model.keras").write_bytes(b"not a zip")
    try:
        with pytest.warns(UserWarning, match="damaged run folder"):
            runs = list_runs(ws).set_index("run_id")
        assert runs.loc[good.run_id, "damaged"] == ""
        assert "config.json must hold a JSON object" in runs.loc[bad.name, "damaged"]
        assert bad.name in runs.attrs["damaged"]
        assert load_run("latest", workspace=ws).run_id == good.run_id  # never a damaged one
    finally:
        import shutil

        shutil.rmtree(bad)


def test_a_garbage_model_file_is_not_a_valid_keras_archive(runs_ws, tmp_path):
    ws, good = runs_ws
    import shutil

    copy = tmp_path / good.run_id
    shutil.copytree(good.path, copy)
    (copy / "model.keras").write_bytes(b"\x00garbage" * 100)
    assert "not a valid Keras archive" in run_problem(copy)
    with pytest.raises(ValueError, match="not a valid Keras archive"):
        Run(copy).load_model()


def test_an_edited_classes_json_is_refused(runs_ws, tmp_path):
    ws, good = runs_ws
    import shutil

    copy = tmp_path / good.run_id
    shutil.copytree(good.path, copy)
    (copy / "classes.json").write_text(json.dumps(["dog", "cat", "owl"]))  # renamed / reordered
    with pytest.raises(ValueError, match="not the class list its model was trained with"):
        Run(copy).classes
    assert "not the class list" in run_problem(copy)


def test_a_run_saved_before_the_hash_loads_with_a_warning(runs_ws, tmp_path):
    ws, good = runs_ws
    import shutil

    copy = tmp_path / good.run_id
    shutil.copytree(good.path, copy)
    config = json.loads((copy / "config.json").read_text())
    del config[CLASSES_HASH_KEY]
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match="saved before class lists were bound"):
        assert Run(copy).classes == CLASSES
    assert run_problem(copy) == ""


def test_the_output_width_is_checked_against_the_class_list(runs_ws, tmp_path):
    ws, good = runs_ws
    run = save_run(open_workspace(tmp_path / "w2"), tiny_model(num_classes=2), classes=["a", "b"],
                   config={"model": "tiny"})
    import shutil

    shutil.copy(good.path / "model.keras", run.path / "model.keras")  # a 3-class model swapped in
    with pytest.raises(ValueError, match="3 outputs but classes.json lists 2"):
        Run(run.path).load_model(compile=False)
