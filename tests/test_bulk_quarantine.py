"""Damaged bulk parts are quarantined (kept) and their images identified again; links in a source
folder are reported as errors, never followed."""

from __future__ import annotations

import numpy as np
import pytest
from bulk_runs import tiny_run, write_images

from imgcls import bulk


def truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_a_truncated_part_is_quarantined_and_the_intact_parts_are_read(tmp_path):
    from imgcls.bulk.store import ChunkWriter, JobStore

    store = JobStore(tmp_path / "job.parquet")
    store.create()
    writer = ChunkWriter(store.out, top_k=2, classes=["a", "b"], model_name="m", run_id="r", start_part=0)
    for i in range(3):
        writer.add_batch([f"/x/{i}.png"], [f"{i}.png"], np.array([[0.3, 0.7]]))
        writer.flush()
    truncate(store.out / "part-00002.parquet")
    with pytest.warns(RuntimeWarning, match="part-00002.parquet"):
        df = bulk.load_results(store.out)
    assert df["path"].tolist() == ["/x/0.png", "/x/2.png"]
    assert df.attrs["quarantined"] == ["part-00002.parquet"]
    assert (store.out / "_quarantine" / "part-00002.parquet").exists()  # kept, never deleted
    assert store.recorded_paths() == {"/x/0.png", "/x/2.png"}  # its image counts as not done
    assert bulk.load_results(store.out).attrs["quarantined"] == ["part-00002.parquet"]  # still said


@pytest.fixture(scope="module")
def ws_run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("quarantine") / "ws")


def test_resume_identifies_the_images_of_a_quarantined_part_again(ws_run, tmp_path):
    ws, run = ws_run
    folder = tmp_path / "pool"
    write_images(folder, 24, seed=3, nested=False)
    out = tmp_path / "job.parquet"
    first = bulk.identify(ws, folder, run=run, out=out, batch_size=4, chunk_size=8, progress=False)
    assert len(first) == 24 and len(list(out.glob("part-*.parquet"))) == 3
    truncate(out / "part-00002.parquet", keep=0.3)
    with pytest.warns(RuntimeWarning, match="cannot be read"):
        again = bulk.identify(ws, folder, run=run, out=out, batch_size=4, chunk_size=8, progress=False)
    assert len(again) == 24 and again["path"].is_unique  # the 8 lost rows identified again, once
    assert again.attrs["quarantined"] == ["part-00002.parquet"]
    cols = ["path", "top1_class", "top1_score"]
    a = first[cols].sort_values("path").reset_index(drop=True)
    b = again[cols].sort_values("path").reset_index(drop=True)
    assert a["path"].tolist() == b["path"].tolist()
    np.testing.assert_allclose(a["top1_score"], b["top1_score"], rtol=1e-4, atol=1e-5)


def test_links_in_a_source_folder_are_errors_with_the_reason(ws_run, tmp_path):
    ws, run = ws_run
    folder = tmp_path / "pool"
    write_images(folder, 4, seed=4, nested=False)
    secret = tmp_path / "passwd"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    (folder / "leak.jpg").symlink_to(secret)
    (folder / "gone.png").symlink_to(tmp_path / "missing.png")
    out = tmp_path / "job.parquet"
    results = bulk.identify(ws, folder, run=run, out=out, progress=False)
    assert len(results) == 4 and results.attrs["n_errors"] == 2
    errors = bulk.load_errors(out).set_index("relpath")
    assert errors.loc["leak.jpg", "reason"].startswith("symbolic link leaving the folder")
    assert errors.loc["gone.png", "reason"].startswith("dangling link")
    assert (errors["hash"] == "").all()
    assert "root:x" not in errors.to_csv()
    direct = bulk.identify(ws, [folder / "leak.jpg"], run=run, out=tmp_path / "direct.parquet", progress=False)
    reason = bulk.load_errors(direct.attrs["results_path"])["reason"].iloc[0]
    assert "text file" in reason and "root:x" not in reason  # what it looks like, never its bytes
