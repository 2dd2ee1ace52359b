"""Real browser checks (issue 6): the live scrubber in JupyterLab and the static HTML reports, in headless Chromium.

* ``test_live_scrubber_in_jupyterlab``: a JupyterLab on 127.0.0.1 (random port, a token, a temporary root
  holding a copy of notebooks/attention.ipynb with small parameters injected after its parameters cell) opened
  in Chromium; Run > Run All Cells; the scrubber's Play button and slider move the step and the picture.
* ``test_static_reports_offline``: ``python -m drawviz report`` for two tiny runs into a temporary folder, its
  index.html opened from file:// with every non-file request aborted: the runs are listed, every link opens,
  the embedded (jshtml) scrubbers step frame by frame, and nothing outside the report folder is requested.

Both need Playwright (Python) and a Chromium (``./bootstrap.sh`` installs both); without them they fail with
instructions, they never skip. Screenshots and the JupyterLab log go to test-artifacts/browser/ (git-ignored).
Run only these: ``pytest -m browser``; everything else: ``pytest -m "not browser"``.
"""

from __future__ import annotations

import ast
import os
import re
import secrets
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from browser_helpers import ARTIFACTS, Lab, chromium, describe, kill_all, tagged_processes, wait_gone

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "attention.ipynb"
T = 4  # drawing steps of the tiny models: the scrubbers have T frames

# Injected after the parameters cell of the JupyterLab copy (as papermill does): a tiny model trained in the
# notebook itself by its own fallback (pages.model_for), so Run All takes seconds on a CPU.
LAB_PARAMETERS = {
    "dataset": "mnist-sample",
    "data_root": None,
    "checkpoint": "tiny-model.pt",
    "train_if_missing": True,  # a file named here that is not there yet: trained first, as asked
    "T": T,
    "steps": 10,
    "n_samples": 8,
    "n_show": 2,
    "scrub_sample": 0,
    "device": "cpu",
    "seed": 0,
}

# Two runs, so the index has more than one row and links into more than one folder.
RUNS_YAML = f"""
runs:
  - name: tiny-a
    dataset: mnist-sample
    notebooks: [train, attention]
    parameters: {{T: {T}, steps: 10, batch_size: 16, eval_every: 10, test_limit: 32, n_samples: 8, n_show: 2,
                 overrides: {{enc_size: 32, dec_size: 32, z_size: 8}}, device: cpu}}
  - name: tiny-b
    dataset: mnist-sample
    notebooks: [train]
    parameters: {{T: 3, steps: 5, batch_size: 16, eval_every: 5, test_limit: 32, n_samples: 8,
                 overrides: {{enc_size: 32, dec_size: 32, z_size: 8}}, device: cpu}}
"""

TIMEOUT_MS = 180_000  # generous: other work may be loading the CPU; nothing here asserts on time


def shot(page, name: str, **kwargs) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), **kwargs)
    except Exception as err:  # a screenshot must never hide the real failure
        print(f"screenshot {name} failed: {err}")


def child_pids(parent: int) -> set[int]:
    """All live descendants of ``parent`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if stat[0] != "Z":
                children.setdefault(int(stat[1]), []).append(int(entry.name))
    found, todo = set(), [parent]
    while todo:
        for pid in children.get(todo.pop(), []):
            if pid not in found:
                found.add(pid)
                todo.append(pid)
    return found


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module; afterwards no Chromium or Playwright driver may be left running."""
    tag = secrets.token_hex(8)
    before = child_pids(os.getpid())
    try:
        with chromium(tag) as b:
            yield b
    finally:
        left = wait_gone(tag, timeout=10)
        stray = sorted((child_pids(os.getpid()) - before) | set(left))
        if stray:
            kill_all(stray)
            pytest.fail(f"processes left running after the browser was closed (now killed):\n{describe(stray)}", pytrace=False)


# The interventions notebook in JupyterLab: its own tiny model, the window explorer live at step 2.
EXPLORER_PARAMETERS = {
    "dataset": "mnist-sample",
    "data_root": None,
    "checkpoint": "tiny-explorer.pt",
    "train_if_missing": True,
    "T": T,
    "steps": 10,
    "n_images": 4,
    "step": 2,
    "sample": 0,
    "device": "cpu",
    "seed": 0,
    "live": True,
}


def lab_notebook(target: Path, notebook: Path = NOTEBOOK, parameters: dict = LAB_PARAMETERS) -> None:
    """A notebook with ``parameters`` injected after its parameters cell (LAB_PARAMETERS into attention.ipynb)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name} needs exactly one cell tagged 'parameters'"
    declared = {
        t.id
        for node in ast.parse(nb.cells[tagged[0]].source).body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    missing = set(parameters) - declared
    assert not missing, f"{notebook.name} no longer declares the parameters {sorted(missing)}: update the injected parameters"
    source = "# Parameters injected by tests/test_browser.py: a tiny model, trained here in seconds\n" + "\n".join(
        f"{k} = {v!r}" for k, v in parameters.items()
    )
    nb.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    nbformat.write(nb, target)


@pytest.fixture
def lab(tmp_path):
    """JupyterLab serving a temporary folder; shut down, kernels included, however the test ends."""
    root = tmp_path / "lab"
    root.mkdir()
    lab_notebook(root / "attention.ipynb")
    lab_notebook(root / "interventions.ipynb", ROOT / "notebooks" / "interventions.ipynb", EXPLORER_PARAMETERS)
    server = Lab(root, home=tmp_path / "jupyter-home", log=ARTIFACTS / "jupyterlab.log")
    try:
        for attempt in range(3):
            try:
                server.start()
                break
            except RuntimeError:  # the free port was taken in between: another one
                if attempt == 2 or "already in use" not in server.log_tail():
                    raise
                server.stop()
                server = Lab(root, home=tmp_path / "jupyter-home", log=ARTIFACTS / "jupyterlab.log")
        yield server
    finally:
        killed = server.stop()
        still = tagged_processes(server.tag)
        if killed or still:
            kill_all(still)
            pytest.fail(
                "JupyterLab left processes behind after shutdown (killed now):\n"
                f"{describe(sorted(set(killed) | set(still)))}\nserver log tail:\n{server.log_tail()}",
                pytrace=False,
            )


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    """`python -m drawviz report` for RUNS_YAML into a temporary folder (about a minute on 2 cores)."""
    tmp = tmp_path_factory.mktemp("browser-report")
    runs = tmp / "runs.yaml"
    runs.write_text(RUNS_YAML)
    out = tmp / "reports"
    env = {k: v for k, v in os.environ.items() if k != "DRAWVIZ_DATA"}  # offline: the shipped mnist-sample
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "drawviz",
            "report",
            "--runs",
            str(runs),
            "--out",
            str(out),
            "--notebooks",
            "train",
            "attention",
            "--no-comparison",
            "--device",
            "cpu",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"drawviz report failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return out


# ----------------------------------------------------------------------------- JupyterLab

ALL_CELLS_RAN = """() => {
    const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')]
        .map(e => e.textContent.trim());
    const status = [...document.querySelectorAll('.jp-StatusBar-Widget')].map(e => e.textContent).join(' ');
    const idle = /\\|\\s*Idle/.test(status);
    const failed = [...document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
        .some(e => e.textContent.includes('Traceback'));  // Run All stops at an error: report it, don't wait on
    return idle && prompts.length > 0 && (failed
        || (!prompts.includes('[*]:') && /^\\[\\d+\\]:$/.test(prompts[prompts.length - 1])));
}"""


def page_problems(page) -> list[str]:
    """Widget and kernel errors visible in the page."""
    problems = []
    text = page.locator("body").inner_text()
    for needle in ("Error displaying widget", "Kernel Restarting", "The kernel has died", "Dead kernel"):
        if needle in text:
            problems.append(f"the page shows {needle!r}")
    for out in page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').all():
        body = out.inner_text()
        if "Traceback" in body or re.search(r"\w+Error\b", body):
            problems.append(f"error output: {body[:1500]}")
    status = " ".join(page.locator(".jp-StatusBar-Widget").all_inner_texts())
    if re.search(r"\|\s*(Dead|Unknown|Restarting)", status):
        problems.append(f"kernel status: {status!r}")
    return problems


def settled(img, page, previous_src: str | None = None) -> tuple[str, bytes]:
    """(src, screenshot) of the scrubber's image once the kernel is idle and the picture stops changing."""
    if previous_src is not None:
        page.wait_for_function(
            "([e, old]) => e.src !== old && e.complete", arg=[img.element_handle(), previous_src], timeout=TIMEOUT_MS
        )
    src, png = None, None
    for _ in range(600):  # each round waits for the kernel to be idle; polling, no timed assertion
        page.get_by_text(re.compile(r"\|\s*Idle")).first.wait_for(timeout=TIMEOUT_MS)
        page.wait_for_function("e => e.complete && e.naturalWidth > 0", arg=img.element_handle(), timeout=TIMEOUT_MS)
        now_src, now_png = img.get_attribute("src"), img.screenshot()
        if now_src == src and now_png == png:
            return src, png
        src, png = now_src, now_png
        page.wait_for_timeout(500)
    raise AssertionError("the scrubber's picture never settled")


def run_all_cells(page, lab, notebook: str, shot_name: str = None) -> None:
    """Open ``notebook`` in JupyterLab, wait for its kernel, then Run > Run All Cells through the menu bar as a
    person would, and wait until every cell has run without an error shown."""
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(lab.url(f"lab/tree/{notebook}"), timeout=TIMEOUT_MS)
    page.locator(".jp-NotebookPanel").wait_for()
    page.get_by_text(re.compile(r"\|\s*Idle")).first.wait_for()  # the notebook's kernel is up
    if shot_name:
        shot(page, shot_name)
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item", has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$"))).click()
    page.wait_for_function(ALL_CELLS_RAN, timeout=TIMEOUT_MS)
    problems = page_problems(page)
    assert not problems, "after Run All Cells:\n" + "\n".join(problems)


def test_live_scrubber_in_jupyterlab(browser, lab):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page_errors: list[str] = []
    console_errors: list[str] = []
    page.on("pageerror", lambda err: page_errors.append(str(err)))
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    try:
        run_all_cells(page, lab, "attention.ipynb", shot_name="lab-1-opened")

        scrubber = (
            page.locator(".widget-vbox")
            .filter(has=page.locator(".widget-play"))
            .filter(has=page.locator(".widget-slider .widget-label", has_text="step t"))
        )
        scrubber.wait_for()
        assert scrubber.count() == 1, f"expected one live scrubber, found {scrubber.count()}"
        scrubber.scroll_into_view_if_needed()
        readout = scrubber.locator(".widget-slider .widget-readout")
        handle = scrubber.locator(".noUi-handle")
        img = scrubber.locator("img.widget-image")
        img.wait_for()
        assert readout.inner_text().strip() == "1" and handle.get_attribute("aria-valuemax").startswith(str(T))
        src1, png1 = settled(img, page)
        shot(page, "lab-2-scrubber-at-1")

        # Play: the jslinked slider walks 1 -> T in the browser, the kernel redraws the picture
        page.evaluate(
            """r => { window.__steps = []; new MutationObserver(() => window.__steps.push(r.textContent.trim()))
                                .observe(r, {childList: true, characterData: true, subtree: true}); }""",
            readout.element_handle(),
        )
        scrubber.locator(".widget-play button").first.click()
        page.wait_for_function(f"r => r.textContent.trim() === '{T}'", arg=readout.element_handle(), timeout=TIMEOUT_MS)
        steps = page.evaluate("() => window.__steps")
        assert [s for i, s in enumerate(steps) if i == 0 or s != steps[i - 1]] == [str(t) for t in range(2, T + 1)], (
            f"Play should show every step 2..{T} in turn, the readout showed {steps}"
        )
        srcT, pngT = settled(img, page, previous_src=src1)
        shot(page, f"lab-3-played-to-{T}")
        assert pngT != png1, f"the picture at step {T} (after Play) looks the same as at step 1"

        # Drag the slider back to step 2
        box = scrubber.locator(".noUi-base").bounding_box()
        hbox = handle.bounding_box()
        page.mouse.move(hbox["x"] + hbox["width"] / 2, hbox["y"] + hbox["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * (2 - 1) / (T - 1), box["y"] + box["height"] / 2, steps=8)
        page.mouse.up()
        page.wait_for_function("r => r.textContent.trim() === '2'", arg=readout.element_handle(), timeout=TIMEOUT_MS)
        assert handle.get_attribute("aria-valuetext") == "2"
        src2, png2 = settled(img, page, previous_src=srcT)
        shot(page, "lab-4-dragged-to-2")
        assert png2 != pngT and png2 != png1, "the picture at step 2 should differ from steps 1 and T"

        # One step with the keyboard on the slider's handle
        handle.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function("r => r.textContent.trim() === '3'", arg=readout.element_handle(), timeout=TIMEOUT_MS)
        _, png3 = settled(img, page, previous_src=src2)
        assert png3 not in (png1, png2, pngT), "the picture at step 3 should differ from steps 1, 2 and T"

        problems = page_problems(page)
        assert not problems, "after scrubbing:\n" + "\n".join(problems)
        assert not page_errors, f"uncaught errors in the page: {page_errors}"
        widget_errors = [m for m in console_errors if re.search(r"widget|kernel|comm", m, re.I)]
        assert not widget_errors, f"widget/kernel errors in the browser console: {widget_errors}"
        kernels = lab.api("api/kernels")
        assert len(kernels) == 1 and kernels[0]["execution_state"] == "idle", f"kernels: {kernels}"
    finally:
        shot(page, "lab-final", full_page=True)
        context.close()


def test_window_explorer_in_jupyterlab_redraws_when_a_slider_moves(browser, lab):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda err: page_errors.append(str(err)))
    try:
        run_all_cells(page, lab, "interventions.ipynb")

        explorer = page.locator(".drawviz-window-explorer")
        explorer.wait_for()
        explorer.scroll_into_view_if_needed()
        g_x = explorer.locator(".widget-slider").filter(has=page.locator(".widget-label", has_text=re.compile(r"^g_x$")))
        assert g_x.count() == 1, "the explorer has one g_x slider"
        readout, handle = g_x.locator(".widget-readout"), g_x.locator(".noUi-handle")
        img = explorer.locator("img.widget-image")
        img.wait_for()
        before_value = float(readout.inner_text())
        src0, png0 = settled(img, page)
        shot(page, "explorer-1-model-window")

        # the write window at step 2 moved to the right edge of the slider's range (1.5 image widths):
        # the step paints off the image, so the drawing from step 2 on changes
        handle.focus()
        page.keyboard.press("End")
        page.wait_for_function(
            "([r, v]) => parseFloat(r.textContent) !== v", arg=[readout.element_handle(), before_value], timeout=TIMEOUT_MS
        )
        assert float(readout.inner_text()) == pytest.approx(42.0)  # 1.5 × 28
        src1, png1 = settled(img, page, previous_src=src0)
        shot(page, "explorer-2-window-moved")
        assert png1 != png0, "moving the write window did not change the drawing shown"

        # the button restores the model's own window, and its picture
        explorer.get_by_role("button", name="the model's window").click()
        page.wait_for_function(
            "([r, v]) => Math.abs(parseFloat(r.textContent) - v) < 0.01",
            arg=[readout.element_handle(), before_value],
            timeout=TIMEOUT_MS,
        )
        _, png2 = settled(img, page, previous_src=src1)
        assert png2 == png0, "the model's window should redraw the model's drawing"
        assert not page_problems(page) and not page_errors, page_problems(page) + page_errors
    finally:
        shot(page, "explorer-final", full_page=True)
        context.close()


# ----------------------------------------------------------------------------- static reports


def test_static_reports_offline(browser, report_dir):
    out = report_dir.resolve()
    context = browser.new_context(viewport={"width": 1300, "height": 1000}, service_workers="block")
    blocked: list[str] = []
    requested: list[str] = []
    page_errors: list[str] = []

    def route(r):
        if r.request.url.startswith(("file:", "data:", "blob:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    context.on("request", lambda req: requested.append(req.url))
    page = context.new_page()
    page.on("pageerror", lambda err: page_errors.append(str(err)))
    page.on("websocket", lambda ws: blocked.append(ws.url))
    try:
        page.set_default_timeout(TIMEOUT_MS)
        index = out / "index.html"
        page.goto(index.as_uri())
        shot(page, "report-1-index", full_page=True)
        rows = page.locator("table tr").filter(has=page.locator("td"))
        names = [r.locator("td").first.inner_text().strip() for r in rows.all()]
        assert names == ["tiny-a", "tiny-b"], f"the index should list the two runs, it lists {names}"
        for row in rows.all():
            assert row.locator("td.ok").count() == 1, f"run not ok in the index: {row.inner_text()}"

        hrefs = [a.get_attribute("href") for a in page.locator("a[href]").all()]
        expected = {
            "tiny-a/train.html",
            "tiny-a/attention.html",
            "tiny-a/drawing.gif",
            "tiny-a/metrics.json",
            "tiny-b/train.html",
            "tiny-b/metrics.json",
        }  # tiny-b ran train only: no drawing, no GIF
        assert set(hrefs) == expected, f"index links: {hrefs}"
        for i, href in enumerate(hrefs):
            link = page.locator(f'a[href="{href}"]')
            with page.expect_navigation():
                link.click()
            target = (out / href).resolve()
            assert page.url == target.as_uri(), f"{href} opened {page.url}"
            if href.endswith(".gif"):  # the browser shows the animation on its own
                size = page.evaluate(
                    "() => { const i = document.querySelector('img'); return [i.naturalWidth, i.naturalHeight]; }"
                )
                assert min(size) > 50, f"{href} did not load as an image: {size}"
                shot(page, f"report-2-link-{i}-{href.replace('/', '-')}")
                page.go_back()
                page.locator("table").wait_for()
                continue
            body = page.locator("body").inner_text()
            assert body.strip(), f"{href} opened an empty page"
            if href.endswith(".html"):
                assert page.locator(".jp-Notebook").count() == 1, f"{href} is not a notebook report"
                errors = page.locator('[data-mime-type="application/vnd.jupyter.stderr"]').filter(
                    has_text=re.compile(r"Traceback|\w+Error\b")
                )
                assert errors.count() == 0, f"{href} shows an error: {errors.first.inner_text()[:1500]}"
            else:
                assert '"status": "ok"' in body, f"{href}: {body[:500]}"
            shot(page, f"report-2-link-{i}-{href.replace('/', '-')}")
            page.go_back()
            page.locator("table").wait_for()

        # The static scrubbers (matplotlib jshtml) in the attention report: step through every frame
        page.goto((out / "tiny-a" / "attention.html").as_uri())
        animations = page.locator("div.animation")
        assert animations.count() == 2, f"expected 2 static scrubbers (reconstruction, prior), found {animations.count()}"
        for k, anim in enumerate(animations.all()):
            anim.scroll_into_view_if_needed()
            img = anim.locator("img").first
            slider = anim.locator("input.anim-slider")
            assert slider.evaluate("e => e.max") == str(T - 1), (
                f"scrubber {k}: expected {T} frames, the slider's max is {slider.evaluate('e => e.max')}"
            )
            frames = [(slider.evaluate("e => e.value"), img.get_attribute("src"))]
            assert frames[0][0] == "0" and frames[0][1].startswith("data:image/png;base64,")
            for _ in range(T - 1):
                anim.get_by_role("button", name="Next frame").click()
                page.wait_for_function("([s, old]) => s.value !== old", arg=[slider.element_handle(), frames[-1][0]])
                frames.append((slider.evaluate("e => e.value"), img.get_attribute("src")))
            assert [f[0] for f in frames] == [str(t) for t in range(T)], f"scrubber {k}: frames went {frames}"
            assert len({f[1] for f in frames}) == T, f"scrubber {k}: the picture did not change with every frame"
            shot(page, f"report-3-scrubber-{k}-last-frame")
            anim.get_by_role("button", name="Previous frame").click()
            page.wait_for_function(f"s => s.value === '{T - 2}'", arg=slider.element_handle())
            assert img.get_attribute("src") == frames[-2][1], f"scrubber {k}: previous frame is not the one before"

        assert not page_errors, f"uncaught errors in the report pages: {page_errors}"
        assert not blocked, f"the reports requested the network (blocked): {blocked}"
        outside = []
        for url in requested:
            if url.startswith("file:"):
                path = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).resolve()
                if out != path and out not in path.parents:
                    outside.append(url)
            elif not url.startswith(("data:", "blob:")):
                outside.append(url)
        assert not outside, f"the reports requested files outside {out}: {outside}"
        assert any(u.endswith("/attention.html") for u in requested), "request recording did not work"
    finally:
        shot(page, "report-final", full_page=True)
        context.close()


# ----------------------------------------------------------------------------- markup in user strings

# Run names are restricted to plain folder names (test_report.py); every other string a user controls reaches
# the pages too: the data root's folder name, a model's folder and file name, the notebooks' `title`.
# Each payload, if it ran, would change the page title.
PAYLOADS = {
    "data_root": "<img src=x onerror=document.title='pwned-root'>",
    "model_dir": "<script>document.title='pwned-dir'<",
    "model_file": "<svg onload=document.title='pwned-file'>.pt",
    "title": "<script>document.title='pwned-title'</script>",
}


def test_markup_in_user_strings_is_shown_as_text_and_never_runs(browser, tmp_path, data_root):
    """Issue 14, item 2: a report made from a data root, model path and title that are HTML runs no script."""
    from drawviz import data
    from drawviz.model import DrawConfig
    from drawviz.train import train

    root = tmp_path / PAYLOADS["data_root"]  # a real folder (a symlinked one would be resolved away)
    (root / "MNIST" / "raw").mkdir(parents=True)
    for f in (Path(data_root) / "MNIST" / "raw").glob("*-ubyte"):
        (root / "MNIST" / "raw" / f.name).symlink_to(f.resolve())
    model_dir = tmp_path / PAYLOADS["model_dir"]
    model_dir.mkdir()
    model = model_dir / PAYLOADS["model_file"]
    config = DrawConfig(T=3, enc_size=32, dec_size=32, z_size=8)
    train(
        config,
        data.load("mnist", "train", root, limit=64),
        steps=2,
        batch_size=32,
        device="cpu",
        checkpoint=model,
        progress=False,
    )
    runs = tmp_path / "runs.yaml"
    runs.write_text(
        "runs:\n"
        + "".join(
            f"  - name: run-{k}\n    dataset: mnist\n    model: {str(model)!r}\n    notebooks: [train]\n"
            f"    parameters: {{title: {PAYLOADS['title']!r}, steps: 2, test_limit: 32, n_samples: 8, device: cpu}}\n"
            for k in "ab"
        )
    )
    out = tmp_path / "reports"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "drawviz",
            "report",
            "--runs",
            str(runs),
            "--out",
            str(out),
            "--data-root",
            str(root),
            "--notebooks",
            "train",
            "blur",
            "--device",
            "cpu",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"drawviz report failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
    pages = [out / "data.html", out / "run-a" / "train.html", out / "data-comparison" / "blur.html"]

    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        for path in pages:
            assert path.exists(), f"the report has no {path.relative_to(out)}"
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            page.wait_for_timeout(300)  # an onerror/onload handler would have fired by now
            shot(page, f"markup-{path.parent.name}-{path.stem}", full_page=True)
            title = page.title()
            assert "pwned" not in title, f"{path.relative_to(out)} ran user-given markup: title {title!r}"
            injected = page.evaluate("""() => [...document.querySelectorAll('img[onerror], svg[onload], script')]
                .filter(e => (e.outerHTML || '').includes('pwned')).map(e => e.outerHTML)""")
            assert not injected, f"{path.relative_to(out)} turned user strings into elements: {injected}"
        assert not dialogs, f"a page opened a dialog: {dialogs}"
        # shown as text, where they are shown at all
        page.goto((out / "data.html").as_uri())
        assert PAYLOADS["data_root"] in page.locator("body").inner_text()
        page.goto((out / "data-comparison" / "blur.html").as_uri())
        assert PAYLOADS["model_file"] in page.locator("body").inner_text()
    finally:
        context.close()


def test_reports_fit_a_laptop_screen_with_code_folded(browser, report_dir):
    """At 1,366 px: the index and the pages scroll down, never sideways; every table is inside the page
    (wide ones scroll in place); code cells are folded until "show code" is ticked."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    tables_outside = """() => [...document.querySelectorAll('table')]
        .filter(t => t.getBoundingClientRect().right > document.documentElement.clientWidth + 1).length"""
    try:
        page.goto((report_dir / "index.html").as_uri())
        page.locator("table").wait_for()
        shot(page, "layout-index", full_page=True)
        assert page.evaluate(overflow) <= 0, "the index scrolls sideways at 1,366 px"
        assert page.evaluate(tables_outside) == 0
        broken = """() => [...document.querySelectorAll('th, td.num')].flatMap(th => {
            const text = th.firstChild, words = [];
            if (!text || text.nodeType !== Node.TEXT_NODE) return words;
            for (const m of text.textContent.matchAll(/\\S+/g)) {
                const r = document.createRange();
                r.setStart(text, m.index); r.setEnd(text, m.index + m[0].length);
                if (new Set([...r.getClientRects()].map(b => Math.round(b.top))).size > 1) words.push(m[0]);
            }
            return words; })"""
        assert page.evaluate(broken) == [], "a column heading breaks inside a word, or a number (T, the bound) inside itself"
        page.goto((report_dir / "tiny-a" / "attention.html").as_uri())
        page.locator(".jp-Notebook").wait_for()
        code = page.locator(".jp-CodeCell .jp-Cell-inputWrapper")
        outputs = page.locator(".jp-OutputArea-output")
        assert code.count() > 3 and all(not c.is_visible() for c in code.all()), "code cells should start folded"
        assert any(o.is_visible() for o in outputs.all()), "the figures and tables stay shown"
        shot(page, "layout-attention-folded", full_page=True)
        assert page.evaluate(overflow) <= 0 and page.evaluate(tables_outside) == 0
        page.get_by_label("show code").check()
        assert all(c.is_visible() for c in code.all()), "show code unfolds every code cell"
        assert page.evaluate(overflow) <= 0, "the unfolded code wraps instead of widening the page"
        assert not re.search(r"\d\.\d{2}0{3,}\d", page.locator("body").inner_text()), "float noise (e.g. 17.040001)"
    finally:
        context.close()
