"""Notebook 05 in a real JupyterLab, driven by headless Chromium (Playwright).

The test starts JupyterLab on 127.0.0.1 (a free port, a random token,
``--no-browser``) in a temporary folder holding notebook 05 with its
parameters injected (pointing at a small temporary workspace with a tiny
saved run), runs all cells through the Run menu, waits for the review grid,
changes one tile's class in the tile's own class box, clicks Apply, and
finds the file in its new class folder on disk. Then it drives the grid by
keyboard, as a person would: a click on a tile, ``a`` (first choice) and
``d`` (discard), Shift+A (apply: the files are in their class folder and in
``trash/``), Shift+Z (undo: they are back); the notebook's cell count and
markdown cells never change while keys are pressed on the grid (``a`` would
insert a cell, ``1`` turn one into a heading, if a key reached JupyterLab),
and a key pressed outside the grid still reaches JupyterLab (the control).
Screenshots are kept in ``tests/artifacts/browser/``.

Chromium is Debian's (``apt-get install -y chromium``), never downloaded by
Playwright. Without ``/usr/bin/chromium`` the test is skipped, except in CI
(``CI=true``), where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "05_bulk_identification.ipynb"
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
TARGET_CLASS = "giraffe"  # under the cutoff in the sample: never a prediction of the run


def _require(ok: bool, reason: str) -> None:
    if ok:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser test must run in CI)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer within {timeout}s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop JupyterLab and every process it started (kernels included)."""
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(children, timeout=10)


@pytest.fixture(scope="module")
def workspace(zoo_sample_template, tmp_path_factory):
    """A copy of the session's zoo sample with a tiny (untrained) saved run the notebook picks up."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from imgcls.library import Library
    from imgcls.models import create_model
    from imgcls.runs import save_run
    from conftest import copy_workspace

    ws = copy_workspace(zoo_sample_template, tmp_path_factory.mktemp("browser") / "zoo")
    classes = Library(ws).classes()
    model = create_model("simple_cnn", len(classes), input_shape=(32, 32, 3), seed=0)
    save_run(ws, model, classes=classes, run_id="tiny-browser-run", config={"model": "simple_cnn"})
    return ws


@pytest.fixture(scope="module")
def lab(workspace, tmp_path_factory):
    """JupyterLab serving a folder with notebook 05, its parameters injected."""
    papermill = pytest.importorskip("papermill")
    root = tmp_path_factory.mktemp("lab")
    nb = root / NOTEBOOK.name
    papermill.execute_notebook(
        str(NOTEBOOK), str(nb), prepare_only=True, kernel_name="python3", progress_bar=False,
        parameters={"WORKSPACE": str(workspace.root), "PAGE_SIZE": 12, "BATCH_SIZE": 32, "N_LOWEST": 8},
    )
    # User settings: start the notebook's kernel without asking, never fetch news.
    settings = root / ".lab-settings" / "@jupyterlab"
    (settings / "notebook-extension").mkdir(parents=True)
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"autoStartDefaultKernel": True}))
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false"}))
    port, token = _free_port(), secrets.token_hex(16)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "jupyterlab.log"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / ".jupyter-config"),
           "JUPYTER_RUNTIME_DIR": str(root / ".jupyter-runtime"),
           "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--LabApp.workspaces_dir={root / '.lab-workspaces'}",
        f"--LabApp.user_settings_dir={root / '.lab-settings'}",
        "--LabApp.news_url=", "--ServerApp.terminals_enabled=False",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait_for_server(f"http://127.0.0.1:{port}/api/status?token={token}", proc, log)
        # Start the notebook's kernel through the REST API, so the page joins a
        # running session instead of asking which kernel to start.
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/sessions?token={token}", method="POST",
            data=json.dumps({"path": nb.name, "name": nb.name, "type": "notebook",
                             "kernel": {"name": "python3"}}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            assert resp.status in (200, 201)
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "notebook": nb.name, "root": root}
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def browser():
    _require(CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require(False, "playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _undecided(tiles) -> list[int]:
    """Positions of the visible tiles with no decision yet (empty status)."""
    return [i for i in range(tiles.count()) if not tiles.nth(i).locator(".imgcls-status").inner_text().strip()]


def _source(tile) -> Path:
    """The image file a tile shows (its caption's title holds the full path)."""
    return Path(tile.locator(".imgcls-filename").get_attribute("title"))


def _wait_for(check, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.2)
    return check()


def _drive_by_keyboard(page, grid, tiles, workspace) -> None:
    """Decide, apply and undo with keys only; no key pressed on the grid reaches JupyterLab."""
    from playwright.sync_api import expect

    cells = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")
    markdown = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-MarkdownCell")
    n_cells, n_markdown = cells.count(), markdown.count()
    assert n_cells > 5 and n_markdown > 3
    free = _undecided(tiles)
    first = next(i for i in free if i + 1 in free)          # two undecided tiles side by side
    accept_tile, discard_tile = tiles.nth(first), tiles.nth(first + 1)
    accepted, discarded = _source(accept_tile), _source(discard_tile)
    first_choice = accept_tile.locator(".imgcls-accept").inner_text().strip()
    assert accepted.exists() and discarded.exists() and first_choice

    accept_tile.locator(".imgcls-thumb").click()           # a click on a tile: keys go to the grid now
    expect(accept_tile).to_have_class(re.compile(r"\bimgcls-current\b"))
    page.keyboard.press("a")                                 # first choice (in JupyterLab: insert a cell)
    expect(accept_tile.locator(".imgcls-status")).to_contain_text(first_choice)
    expect(discard_tile).to_have_class(re.compile(r"\bimgcls-current\b"))  # the next tile is current
    page.keyboard.press("d")                                 # discard (in JupyterLab: half of "delete cell")
    expect(discard_tile.locator(".imgcls-status")).to_contain_text("trash")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("1")                                 # first choice again (in JupyterLab: a heading)
    expect(discard_tile).to_have_class(re.compile(r"\bimgcls-current\b"))
    expect(discard_tile.locator(".imgcls-status")).to_contain_text("trash")
    page.keyboard.press("Shift+A")                           # apply
    expect(grid.locator(".imgcls-summary")).to_contain_text("Applied", timeout=30_000)
    expect(accept_tile.locator(".imgcls-status")).to_contain_text("applied")
    library_copy = workspace.library / first_choice / accepted.name
    assert _wait_for(lambda: library_copy.exists() and not accepted.exists()), library_copy
    trashed = [p for p in workspace.trash.rglob(discarded.name) if p.is_file()]
    assert trashed and not discarded.exists()
    page.screenshot(path=str(ARTIFACTS / "notebook05_keyboard_applied.png"))

    page.keyboard.press("Shift+Z")                           # undo
    expect(grid.locator(".imgcls-summary")).to_contain_text("Undone", timeout=30_000)
    assert _wait_for(lambda: accepted.exists() and discarded.exists() and not library_copy.exists())
    assert not any(p.is_file() for p in workspace.trash.rglob(discarded.name))
    journal = [json.loads(line) for line in workspace.journal.read_text().splitlines() if line.strip()]
    assert any(e.get("op") == "undo" for e in journal)

    # Not one key pressed on the grid reached JupyterLab.
    time.sleep(1.0)
    assert (cells.count(), markdown.count()) == (n_cells, n_markdown)
    # The control: outside the grid the same kind of key still does (B inserts a cell below).
    page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-MarkdownCell").first.click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    expect(cells).to_have_count(n_cells + 1)


def test_notebook_05_review_grid_in_jupyterlab(browser, lab, workspace):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.set_default_timeout(30_000)
    shot = ARTIFACTS / "notebook05_review_grid.png"
    try:
        page.goto(f"{lab['url']}/lab/tree/{lab['notebook']}?token={lab['token']}")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90_000)
        # Should JupyterLab still ask which kernel to start (a slow machine), say the default.
        kernel_idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first
        kernel_name = page.locator(".jp-Toolbar-kernelName", has_text="Python 3")
        select = page.locator(".jp-Dialog button.jp-mod-accept", has_text="Select")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if select.count() and select.first.is_visible():
                select.first.click()
            if kernel_name.count() and kernel_idle.count():
                break
            time.sleep(0.5)
        expect(kernel_name.first).to_be_visible(timeout=5_000)
        expect(kernel_idle).to_be_attached(timeout=5_000)

        # Run all cells through the menu, as a person would.
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

        # The last cell prints this once the scripted reviewer's grid applied and undid by code.
        expect(page.get_by_text("library restored exactly: True")).to_be_visible(timeout=180_000)
        grid = page.locator(".imgcls-review-grid").first   # the person's grid (the first one shown)
        tiles = grid.locator(".imgcls-tile:visible")
        expect(tiles.first).to_be_visible()
        assert tiles.count() >= 4
        undecided = _undecided(tiles)
        assert len(undecided) >= 3, "the person's grid should start with undecided tiles"

        # A tile without a decision yet.
        tile = tiles.nth(undecided[0])
        tile.scroll_into_view_if_needed()
        caption = tile.locator(".imgcls-filename")
        expect(caption).not_to_have_text("")
        src = Path(caption.get_attribute("title"))   # the image's full path
        assert src.exists() and src.is_relative_to(workspace.unlabelled), src
        assert caption.text_content().strip() == src.relative_to(workspace.unlabelled).as_posix()
        box = tile.locator(".imgcls-label-input input")
        box.click()
        box.fill(TARGET_CLASS)
        box.press("Enter")
        expect(tile.locator(".imgcls-status")).to_contain_text(TARGET_CLASS)

        grid.locator(".imgcls-apply").click()
        expect(grid.locator(".imgcls-summary")).to_contain_text("Applied", timeout=30_000)
        expect(tile.locator(".imgcls-status")).to_contain_text("applied")

        dst = workspace.library / TARGET_CLASS / src.name
        deadline = time.monotonic() + 20
        while not dst.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert dst.exists() and not src.exists()
        journal = [json.loads(line) for line in workspace.journal.read_text().splitlines() if line.strip()]
        stored = dst.relative_to(workspace.root).as_posix()  # the journal stores workspace-relative paths
        assert any(e.get("dst") == stored and e.get("state") == "done" for e in journal)

        tile.scroll_into_view_if_needed()
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000

        _drive_by_keyboard(page, grid, tiles, workspace)
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "notebook05_failure.png"), full_page=True)
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        (ARTIFACTS / "notebook05_failure_outputs.txt").write_text(
            "\n----\n".join(errors.nth(i).inner_text() for i in range(errors.count())))
        raise
    finally:
        page.close()
