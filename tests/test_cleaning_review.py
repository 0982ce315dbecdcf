"""Reviewing label issues: the library-mode grid through the journal and undo, the ranked table
round-tripping through `imgcls apply`, the `imgcls label-issues` command, cleanlab as an optional extra.

The library is the colour library of :mod:`cleaning_library` with four pictures filed under a
wrong colour and a run whose embedding is the mean colour (a real Keras model).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from imgcls.cleaning import find_label_issues, library_embeddings, review_table, write_review_table
from imgcls.cli import main
from imgcls.library import DECISION_COLUMNS, Library

FLIPS = {"red_03": "green", "blue_05": "yellow", "yellow_11": "red", "green_07": "blue"}


def files(ws) -> dict[str, str]:
    """{file name: folder} of every image under library/ and trash/."""
    out = {}
    for top in (ws.library, ws.trash):
        for p in top.rglob("*.png"):
            out[p.name] = str(p.parent.relative_to(ws.root))
    return out


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """One workspace for the module: every test that moves images puts them back (undo)."""
    from cleaning_library import colour_library, save_colour_run

    ws, _ = colour_library(tmp_path_factory.mktemp("review") / "ws", flips=FLIPS)
    save_colour_run(ws, "g1")
    return ws


@pytest.fixture(scope="module")
def scanned(noisy):
    emb = library_embeddings(noisy, "g1")
    issues = find_label_issues(noisy, "g1", embeddings=emb, folds=4, C=1.0)  # 80 images: a looser head flags all 4
    assert int(issues["is_issue"].sum()) == 4
    return noisy, issues, emb


def test_library_grid_shows_flagged_images_with_given_suggested_and_neighbours(scanned):
    from imgcls.ui import LabelIssueGrid, ReviewGrid

    ws, issues, emb = scanned
    grid = LabelIssueGrid(issues, Library(ws), embeddings=emb, page_size=12, top_k=3)
    assert isinstance(grid, ReviewGrid)
    flagged = issues[issues["is_issue"]]
    assert len(grid.results) == len(flagged)
    assert grid.results["label_quality"].is_monotonic_increasing  # most likely wrong first
    tile = grid.visible_tiles[0]
    row = flagged.iloc[0]
    assert tile.path == os.path.abspath(row["path"])
    assert row["given_label"] in tile.prediction.value and row["suggested_label"] in tile.prediction.value
    assert tile.accept_button.description == f"relabel {row['suggested_label']}"
    assert tile.second_button.description == f"keep {row['given_label']}"
    strip = grid.neighbour_html[tile.path]
    assert strip in tile.box.children and strip.value.count("<img") == 3
    assert "nearest labelled" in strip.value and "data:image/jpeg;base64," in strip.value
    # The nearest labelled neighbours of a flipped picture are of its true colour.
    assert f"of 3 are {row['suggested_label']}" in strip.value and not strip.value.startswith("0 of")
    grid.close()


def test_library_grid_decisions_go_through_the_journal_in_one_batch_and_undo(scanned):
    from imgcls.ui import LabelIssueGrid

    ws, issues, emb = scanned
    before = files(ws)
    grid = LabelIssueGrid(issues, Library(ws), embeddings=emb, page_size=12)
    tiles = grid.visible_tiles
    assert len(tiles) >= 3
    relabelled, kept, trashed = tiles[0], tiles[1], tiles[2]
    relabelled.accept_button.click()          # relabel to the suggested class
    kept.second_button.click()                # keep the given label = skip
    trashed.discard_button.click()            # trash
    table = grid.decisions_table()
    assert list(table.columns) == DECISION_COLUMNS
    assert table["action"].tolist() == ["label", "skip", "discard"]
    assert table["label"].tolist()[0] == relabelled.row["suggested_label"]
    assert "label-issue review; given" in table["reason"].iloc[0]
    grid.decide(tiles[1].path, "relabel", kept.row["given_label"])  # relabelling to its own class is a keep
    assert grid.decisions.set_index("path").at[kept.path, "action"] == "skip"
    journal_before = len(Library(ws).journal())
    grid.apply_button.click()
    journal = Library(ws).journal()
    new = journal.iloc[journal_before:]
    assert len(new) == 2 and new["batch"].nunique() == 1  # one batch: the relabel and the trash
    after = files(ws)
    name = Path(relabelled.path).name
    assert after[name] == f"library/{relabelled.row['suggested_label']}"
    assert after[Path(trashed.path).name] == "trash"
    assert after[Path(kept.path).name] == before[Path(kept.path).name]
    grid.undo_button.click()
    assert files(ws) == before
    assert grid.n_pending == 3  # the decisions are pending again
    grid.close()


def test_library_grid_keys_and_names_of_the_library_decisions(scanned):
    from imgcls.ui import ISSUE_ACTIONS, LabelIssueGrid

    ws, issues, _ = scanned
    assert ISSUE_ACTIONS == {"keep": "skip", "relabel": "label", "unknown": "unknown", "trash": "discard"}
    grid = LabelIssueGrid(issues, ws, top_k=0)
    paths = grid.results["path"].tolist()
    assert grid.decide(paths[0], "keep")["action"] == "skip"
    assert grid.decide(paths[1], "trash")["action"] == "discard"
    assert grid.decide(paths[2], "unknown")["action"] == "unknown"
    assert grid.decide(paths[0], "relabel", "purple") == {"path": paths[0], "action": "label", "label": "purple"}
    with pytest.raises(ValueError, match="action"):
        grid.decide(paths[0], "burn")
    with pytest.raises(ValueError, match="issues"):
        LabelIssueGrid(pd.DataFrame({"path": ["x"]}), ws)
    grid.close()


def test_the_ranked_table_round_trips_through_imgcls_apply(scanned, tmp_path, capsys):
    ws, issues, _ = scanned
    table = review_table(issues, ws)
    assert list(table.columns[:4]) == DECISION_COLUMNS
    assert (table["action"] == "").all() and (table["label"] == "").all()
    assert all(p.startswith("library/") for p in table["path"])  # workspace-relative: portable
    before = files(ws)
    for suffix in (".csv", ".parquet"):
        path = write_review_table(table, tmp_path / f"issues{suffix}")
        # Untouched, the table applies as all skips: nothing moves.
        assert main(["apply", str(path), "-w", str(ws.root)]) == 0
        assert files(ws) == before
    # A reviewer fills in the first rows in a spreadsheet: relabel, trash, unknown; the rest stays empty.
    filled = pd.read_csv(tmp_path / "issues.csv", dtype=str, keep_default_na=False)
    filled.loc[0, ["action", "label"]] = ["label", filled.loc[0, "suggested_label"]]
    filled.loc[1, "action"] = "discard"
    filled.loc[2, "action"] = "unknown"
    filled.to_csv(tmp_path / "filled.csv", index=False)
    capsys.readouterr()
    assert main(["apply", str(tmp_path / "filled.csv"), "-w", str(ws.root)]) == 0
    printed = capsys.readouterr().out
    assert "4 of 4 decisions applied in one step" in printed and "imgcls undo" in printed  # 3 moves, 1 keep
    after = files(ws)
    names = [Path(p).name for p in filled["path"]]
    assert after[names[0]] == f"library/{filled.loc[0, 'suggested_label']}"
    assert after[names[1]] == "trash" and after[names[2]] == "library/unknown"
    assert main(["undo", "-w", str(ws.root)]) == 0
    assert files(ws) == before
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        write_review_table(table, tmp_path / "issues.xlsx")


def test_imgcls_label_issues_writes_the_table(noisy, tmp_path, capsys):
    out = tmp_path / "out" / "issues.parquet"
    assert main(["label-issues", "-w", str(noisy.root), "--run", "g1", "--folds", "4", "--out", str(out),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "flagged as label issues" in printed and "imgcls apply" in printed
    table = pd.read_parquet(out)
    assert list(table.columns[:4]) == DECISION_COLUMNS and len(table) >= 2
    flipped = {f"library/{FLIPS[s]}/{s}.png" for s in FLIPS}
    assert set(table["path"]) <= flipped
    assert (noisy.runs / "g1" / "label_noise.csv").is_file()
    assert main(["label-issues", "-w", str(noisy.root), "--run", "g1", "--folds", "4", "--all", "--quiet",
                 "--show", "0"]) == 0
    default = noisy.reports / "label_issues-g1.csv"
    assert len(pd.read_csv(default)) == 80
    assert main(["label-issues", "-w", str(noisy.root), "--run", "g1", "--out", str(tmp_path / "x.txt"),
                 "--quiet"]) == 2


def test_cleanlab_missing_says_how_to_install_it(tmp_path):
    code = (
        "import sys; sys.modules['cleanlab'] = None\n"
        "import numpy as np, pandas as pd\n"
        "from imgcls.cleaning import label_issue_table\n"
        "try:\n"
        "    label_issue_table(pd.DataFrame({'path': ['a', 'b'], 'label': ['x', 'y']}),"
        " np.eye(2), ['x', 'y'])\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "pip install 'imgcls[cleaning]'" in proc.stdout, proc.stderr
