"""Batch reports: run the notebooks for a list of runs and index the results.

``python -m drawviz report`` executes ``notebooks/{train,attention,error_images,blur}.ipynb``
through papermill for each run of a small YAML file, writes ``reports/<run>/<notebook>.{ipynb,html}``,
``reports/<run>/metrics.json`` and ``drawing.gif``, a cross-dataset page ``reports/comparison/blur.html``,
and an index with a table of runs.  With no arguments and no data root it shows the shipped models
(MNIST, Fashion-MNIST, CIFAR-10) on the samples shipped with drawviz, so it works offline on a fresh
machine (index ``reports/index.html``); with ``--data-root`` (or ``DRAWVIZ_DATA``) it uses the full
datasets (index ``reports/data.html``, comparison ``reports/data-comparison/``, runs named ``<dataset>-data``:
neither render overwrites or shows the other's pages).

What the notebooks call (their data, their model, their metrics) is in drawviz.pages; this module
runs them (papermill, loaded only in ``main``) and writes the index from templates/index.html.
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import math
import os
import re
import signal
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from . import data as _data
from . import files as _files
from . import resources as _resources
from . import metrics as _metrics
from .pages import write_json

# also NOTEBOOKS and DEFAULT_RUNS, looked up when asked for (module __getattr__ below)
__all__ = ["ORDER", "INDEX", "load_runs", "run_one", "write_index", "main", "run", "add_arguments"]


def __getattr__(name: str):
    # the checkout's notebooks and runs file, or those installed with the package (drawviz.resources),
    # looked up when asked for, not at import
    if name == "NOTEBOOKS":
        return _resources.notebooks()
    if name == "DEFAULT_RUNS":
        return _resources.runs_file()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


ORDER = ("train", "attention", "error_images", "interventions", "blur", "classify", "draw_this")
# what a run shows when it lists no notebooks: those for its dataset's model kind (data.Dataset.kind)
FOR_KIND = {"draw": ORDER[:5], "classifier": ("classify",), "conditional": ("draw_this",)}
# notebooks that find their model themselves (the shipped file, else a small one they train): no train.ipynb first
STANDALONE = frozenset({"classify", "draw_this"})


# ----------------------------------------------------------------------------- runs file

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # a plain folder name: never "..", "/x" or "a/b"
RESERVED = frozenset({"comparison", "data-comparison", "index.html", "data.html"})  # what the report writes under --out


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def load_runs(path: Path, data_root) -> list[dict]:
    """A runs file is a list of runs, {runs: [...]}, or {offline: [...], data: [...]} (picked by data_root)."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text()) or []
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from None
    if isinstance(doc, dict):
        if "runs" in doc:
            doc = doc["runs"]
        else:
            doc = doc.get("data" if data_root else "offline") or []
    if not isinstance(doc, list):
        raise ValueError(f"{path}: expected a list of runs (name, dataset, parameters)")
    runs, seen = [], set()
    for i, run in enumerate(doc):
        if not isinstance(run, dict) or "name" not in run or "dataset" not in run:
            raise ValueError(f"{path}: run {i + 1} needs at least a name and a dataset, got {run!r}")
        if not isinstance(run["name"], str) or not _NAME.fullmatch(run["name"]):
            raise ValueError(
                f"{path}: run {i + 1} is named {run['name']!r}; a run name is a folder name under --out: "
                "letters, digits, '.', '_' and '-', starting with a letter or digit"
            )
        if not isinstance(run.get("parameters") or {}, dict):
            raise ValueError(
                f"{path}: run {run['name']!r}: parameters must be a mapping (name: value), got {run['parameters']!r}"
            )
        wrong = set(run.get("notebooks") or []) - set(ORDER) if isinstance(run.get("notebooks"), list) else set()
        if wrong:
            raise ValueError(
                f"{path}: run {run['name']!r} lists unknown notebooks {sorted(wrong)}; choose from {', '.join(ORDER)}"
            )
        if run["name"] in RESERVED:
            raise ValueError(
                f"{path}: a run cannot be named {run['name']!r}: the report writes "
                f"{', '.join(sorted(RESERVED))} itself under --out; rename the run"
            )
        if not isinstance(run["dataset"], str):
            raise ValueError(
                f"{path}: run {run['name']!r}: dataset must be a name ({', '.join(_data.DATASETS)}), got {run['dataset']!r}"
            )
        try:
            _data._normalise(run["dataset"])
        except ValueError as err:
            raise ValueError(f"{path}: run {run['name']!r}: {err}") from None
        if run.get("model") is not None and not isinstance(run["model"], str):
            raise ValueError(f"{path}: run {run['name']!r}: model must be a checkpoint's path, got {run['model']!r}")
        if not isinstance(run.get("optional", False), bool):
            raise ValueError(f"{path}: run {run['name']!r}: optional is true or false, got {run['optional']!r}")
        notebooks = run.get("notebooks")
        if notebooks is not None and not (isinstance(notebooks, list) and all(isinstance(n, str) for n in notebooks)):
            raise ValueError(f"{path}: run {run['name']!r}: notebooks is a list of names ({', '.join(ORDER)}), got {notebooks!r}")
        if notebooks == []:  # an empty list read as "all" before: say what it does instead
            raise ValueError(
                f"{path}: run {run['name']!r}: notebooks is empty, which selects none; list the notebooks to run, "
                f"or leave the key out for its kind's (e.g. {', '.join(FOR_KIND['draw'])})"
            )
        for key, value in (run.get("parameters") or {}).items():
            if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
                raise ValueError(
                    f"{path}: run {run['name']!r}: parameter {key} is the string {value!r}: YAML reads a number like "
                    f"1e-3 as text unless it has a dot (1.0e-3) or is written out (0.001)"
                )
        if run["name"] in seen:
            raise ValueError(f"{path}: two runs are named {run['name']!r}")
        seen.add(run["name"])
        unknown = set(run) - {"name", "dataset", "parameters", "model", "optional", "notebooks", "beside"}
        if unknown:
            raise ValueError(f"{path}: run {run['name']!r} has unknown keys {sorted(unknown)}")
        beside = run.get("beside") or {}
        if not (isinstance(beside, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in beside.items())):
            raise ValueError(
                f"{path}: run {run['name']!r}: beside maps a name to a checkpoint's path "
                f"(e.g. {{cifar10-convvae: ../models/cifar10-convvae.pt}}), got {beside!r}"
            )
        run = dict(run, parameters=dict(run.get("parameters") or {}))
        if run.get("model"):
            run["model"] = _relative_to_runs_file(path, run["model"])
        run["beside"] = {name: _relative_to_runs_file(path, model) for name, model in beside.items()}
        runs.append(run)
    shown = [name for run in runs for name in run["beside"]]
    clash = sorted({n for n in shown if n in seen or shown.count(n) > 1})
    if clash:
        raise ValueError(f"{path}: {', '.join(map(repr, clash))} named twice (a run, or a model beside one): rename it")
    return runs


def _relative_to_runs_file(runs_file, model: str) -> Path:
    """A path in a runs file (model:, beside:), relative to the file."""
    model = Path(model)
    return model if model.is_absolute() else (Path(runs_file).parent / model).resolve()


# ----------------------------------------------------------------------------- execution

_TEMPLATE = """{%- extends 'index.html.j2' -%}
{#- Self-contained: no require.js, MathJax, mermaid or widget scripts from a CDN. -#}
{% block html_head_js_requirejs %}{% endblock %}
{% block html_head_js_mathjax %}{% endblock %}
{% block html_head_js_mermaidjs %}{% endblock %}
{% block jupyter_widgets %}{% endblock %}
"""


# Long lines (papermill's injected parameters: a list of runs) wrap instead of being cut off at the page edge;
# wide tables scroll inside their cell; code cells are folded (a page is read for its figures) with a
# checkbox at the top to show them (CSS only: no script).
_STYLE = """<style>
.jp-InputArea-editor pre, .jp-OutputArea-output pre { white-space: pre-wrap; overflow-wrap: anywhere; }
.jp-OutputArea-output table, .jp-RenderedHTMLCommon table { display: block; max-width: 100%; overflow-x: auto; }
body:not(:has(#drawviz-show-code:checked)) .jp-CodeCell .jp-Cell-inputWrapper { display: none; }
.drawviz-code-toggle { position: sticky; top: 0; z-index: 10; display: inline-block; margin: 0.4em 0 0 0.4em;
  padding: 0.2em 0.6em; background: #f4f4f4; border: 1px solid #ccc; border-radius: 4px; font: 13px system-ui, sans-serif; }
</style>
"""
_TOGGLE = "<label class='drawviz-code-toggle'><input type='checkbox' id='drawviz-show-code'> show code</label>"


def to_html(notebook: Path, target: Path) -> Path:
    """nbconvert's lab HTML with every script inline: the static scrubber works offline."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab", extra_loaders=[DictLoader({"drawviz.html.j2": _TEMPLATE})], template_file="drawviz.html.j2"
    )
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    body = body.replace("</head>", _STYLE + "</head>", 1)
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + _TOGGLE, body, count=1)
    return _files.write_text(target, body)


@functools.lru_cache(maxsize=None)  # papermill parses the notebook: once per process is enough
def _declared(notebook: Path) -> frozenset[str]:
    import papermill as pm

    return frozenset(pm.inspect_notebook(str(notebook)))


def _reason(err: BaseException) -> str:
    """One line saying why a notebook failed: the exception raised in the notebook (name and the first
    line of its message), not the last line of papermill's multi-line report."""
    name, value = getattr(err, "ename", None), getattr(err, "evalue", None)
    if name is None:
        name, value = type(err).__name__, str(err)
    lines = [line.strip() for line in str(value or "").splitlines() if line.strip().strip("\"'")]
    return f"{name}: {lines[0] if lines else ''}".rstrip(": ")[:500]


class _Stopping:
    """Ctrl-C (SIGINT) or SIGTERM while a report runs: the running cell is interrupted at once (its kernel is
    sent an interrupt: jupyter starts kernels in a session of their own, out of the terminal's reach), no notebook
    or run after it starts, and the index is written for what was done. A second Ctrl-C stops at once."""

    def __init__(self):
        self.asked: Optional[str] = None  # the signal's name, once one came
        self.kernel: Optional["_Kernel"] = None  # the kernel running a notebook now

    def __call__(self, signum, frame) -> None:
        if self.asked:
            raise KeyboardInterrupt
        self.asked = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        km = self.kernel.km if self.kernel is not None else None
        if km is not None:
            try:
                km.interrupt_kernel()
            except Exception:  # noqa: BLE001 -- a kernel already gone has nothing to interrupt
                pass

    def catching(self):
        """Install this as the SIGINT and SIGTERM handler (in the main thread only); returns the undo."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        before = {sig: signal.signal(sig, self) for sig in (signal.SIGINT, signal.SIGTERM)}
        return lambda: [signal.signal(sig, handler) for sig, handler in before.items()]


_stopping = _Stopping()  # one per process, as signal handlers are


class _Kernel:
    """One Python kernel for the notebooks of a run, started once (a kernel and its imports cost seconds per
    notebook) and emptied before each notebook (``%reset -f``: no name leaks from one notebook to the next);
    a kernel that died is started again. It listens on Unix sockets in a private folder, not on TCP ports
    (no port to collide with another report's, and no "running over TCP without encryption" in the log)."""

    def __init__(self):
        self.km = None
        self.sockets = None

    def __enter__(self) -> "_Kernel":
        self.sockets = tempfile.TemporaryDirectory(prefix="drawviz-kernel-")  # short: a socket path has ~100 bytes
        return self

    def ready(self):
        """The kernel manager for the next notebook: alive, with an empty namespace."""
        from jupyter_client import KernelManager

        if self.km is None or not self.km.is_alive():
            if self.km is not None:
                self.km.cleanup_resources()
            self.km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(self.sockets.name, "k"))
            self.km.start_kernel(cwd=str(_resources.notebooks()))
            _stopping.kernel = self
            return self.km
        _stopping.kernel = self
        client = self.km.blocking_client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            client.execute_interactive("%reset -f", timeout=60, store_history=False)
        finally:
            client.stop_channels()
        return self.km

    def __exit__(self, *exc) -> None:
        if _stopping.kernel is self:
            _stopping.kernel = None
        if self.km is not None:
            self.km.shutdown_kernel(now=True)
            self.km = None
        if self.sockets is not None:
            self.sockets.cleanup()
            self.sockets = None


def _execute(name: str, notebook: Path, out_dir: Path, parameters: dict, log, kernel: Optional[_Kernel] = None) -> dict:
    import papermill as pm

    target = out_dir / f"{name}.ipynb"
    tick = time.perf_counter()
    status, error = "ok", None
    # papermill writes the executed notebook as it goes: into a partial file beside the target, renamed over it
    # once written whole (drawviz.files), so a full disk or a crash never leaves a truncated page behind
    partial = _files.partial_name(target)
    try:
        shared = {"km": kernel.ready()} if kernel is not None else {}
        pm.execute_notebook(
            str(notebook),
            str(partial),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(_resources.notebooks()),
            progress_bar=False,
            log_output=False,
            **shared,
        )
    except Exception as err:  # PapermillExecutionError, a dead kernel, ...: this notebook failed, go on
        status, error = "failed", _reason(err)
    try:
        _keep_whole(partial, target)
    except _files.WriteError as err:
        status, error = "failed", error or str(err)
    seconds = time.perf_counter() - tick
    if target.exists():
        try:
            to_html(target, out_dir / f"{name}.html")
        except Exception as err:
            status, error = "failed", error or f"HTML export failed: {err}"
    log(f"  {name}.ipynb: {status} ({seconds:.0f} s){'  ' + error if error else ''}")
    return {"status": status, "seconds": round(seconds, 1), "error": error}


def _keep_whole(partial: Path, target: Path) -> None:
    """The executed notebook at ``partial`` as ``target`` if it is a whole notebook (a failed one is kept too:
    its error is the page); a truncated one is removed and the target left as it was."""
    import nbformat

    if not partial.exists():
        return
    try:
        nbformat.read(partial, as_version=4)
    except Exception:  # truncated (a full disk): never shown as the page
        partial.unlink(missing_ok=True)
        raise _files.WriteError(f"the executed notebook {target.name} could not be written whole (a full disk?)") from None
    try:
        with open(partial, "rb+") as f:  # on the disk before the rename makes it the page
            os.fsync(f.fileno())
        os.replace(partial, target)
    except OSError as err:
        raise _files.WriteError(f"the executed notebook {target.name} could not be kept: {err}") from None
    finally:
        partial.unlink(missing_ok=True)


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


# a run's parameters that say which model it makes (train.ipynb's config), passed only when it makes its own
_SIZING = frozenset({"preset", "T", "overrides"})


def run_one(run: dict, out: Path, data_root, notebooks, device: str, log) -> dict:
    name, dataset = run["name"], run["dataset"]
    out_dir = out / name
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {"run": name, "dataset": dataset, "notebooks": {}, "status": "ok"}
    if run.get("optional") and _data._normalise(dataset) not in _data.SAMPLES:
        try:
            _data.load(dataset, "test", data_root, limit=1)
        except _data.DatasetNotFoundError:
            log(f"  {dataset} not found under {_data.data_root(data_root)}: skipped (optional run)")
            result["status"] = "skipped"
            return result
    checkpoint = out_dir / "model.pt"
    # the run's own list, narrowed by --notebooks
    own = run.get("notebooks") or FOR_KIND.get(_data.declared(dataset).kind, ORDER)
    wanted = [nb for nb in ORDER if nb in own and nb in notebooks]
    if not wanted:  # nothing to run: nothing is touched, and the index says so
        log(f"  none of its notebooks ({', '.join(own)}) is among --notebooks: skipped")
        nothing = dict.fromkeys(("train", "errors", "attention", "classify", "asked", "sharpness", "checkpoint", "gif", "beside"))
        result.update(nothing, status="skipped", error=f"none of its notebooks ({', '.join(own)}) was selected")
        return result
    _set_aside_if_changed(run, out_dir, checkpoint, log)
    common = {
        "dataset": dataset,
        "data_root": str(data_root) if data_root else None,
        "checkpoint": str(checkpoint),
        "train_if_missing": True,  # a standalone notebook (classify) trains its model in the run's folder
        "device": device,
        "title": name,
        "progress": False,
        "gif_out": str(out_dir / "drawing.gif"),
        "live": False,
    }  # no kernel behind a static report: no live widgets
    model = run.get("model")
    refused = _not_a_checkpoint(model) if model is not None and Path(model).exists() else None
    if refused:  # checked before anything is copied: only a drawviz checkpoint enters the output folder
        log(f"  {refused}")
        result.update(status="failed", error=refused)
        write_json(out_dir / "metrics.json", result)
        return result
    if model is not None and Path(model).exists():
        common["checkpoint_in"] = str(model)
        log(f"  using the shipped model {model}")
        # shown with its own config: train.ipynb refuses a preset, T or overrides that disagree with it (drawviz.start);
        # the run's own size only the fallback trained when the file is missing
        run = dict(run, parameters={k: v for k, v in run["parameters"].items() if k not in _SIZING})
        if "train" in wanted:  # started from a fresh copy, as every report does: never a model.pt an earlier one left
            checkpoint.unlink(missing_ok=True)
    elif model is not None:
        log(f"  no model at {model}: training one")
    declared = {nb: _declared(_resources.notebooks() / f"{nb}.ipynb") for nb in wanted}
    unused = set(run["parameters"]) - set().union(*declared.values())
    if unused:
        log(f"  warning: no notebook takes the parameters {sorted(unused)}")
    with _Kernel() as kernel:
        _run_notebooks(wanted, declared, common, run, out_dir, checkpoint, result, log, kernel)

    # what the notebooks reported (drawviz.metrics): None where one failed or did not run *now*; a run of the
    # same name in the other index (offline or data) shares this folder and may have left its own numbers
    def reported(nb: str, record):
        return record.read(out_dir / f"{nb}.json") if nb in wanted else None

    result["train"] = reported("train", _metrics.Trained)
    result["errors"] = reported("error_images", _metrics.ErrorImages)
    result["attention"] = reported("attention", _metrics.Attention)
    result["classify"] = reported("classify", _metrics.Classification)
    result["asked"] = reported("draw_this", _metrics.Asked)
    blur = reported("blur", _metrics.Blur)
    result["sharpness"] = blur.runs.get(name) if blur is not None else None
    result["checkpoint"] = str(checkpoint) if checkpoint.exists() and _draws(checkpoint) else None  # for the blur page
    result["gif"] = "drawing.gif" if (out_dir / "drawing.gif").exists() else None
    result["beside"] = _shown_beside(run, log)
    write_json(out_dir / "metrics.json", result)
    return result


def _shown_beside(run: dict, log) -> dict:
    """The generators a run names to be shown beside it on the blur page (a one-shot VAE of the same data), those
    that are drawviz checkpoints of a model that draws; the others are said and left out."""
    shown = {}
    for name, model in (run.get("beside") or {}).items():
        why = _not_a_checkpoint(model, drawing=True) if Path(model).exists() else f"no model at {model}"
        if why:
            log(f"  beside {name}: {why}; left off the blur page")
        else:
            shown[name] = str(model)
    return shown


def _not_a_checkpoint(model, *, drawing: bool = False) -> Optional[str]:
    """Why a runs file's model cannot be shown (not a regular file, not a drawviz checkpoint, or with ``drawing``
    a model that does not draw: the blur page needs a generator kind, drawviz.kinds), or None. Read once."""
    from .checkpoints import CheckpointError, load_checkpoint

    if not Path(model).is_file():
        return f"model: {model} is not a regular file; give a drawviz checkpoint (e.g. models/mnist.pt)"
    try:
        kind = load_checkpoint(model)["kind"]
    except (CheckpointError, OSError) as err:
        return f"model: {err}"
    if drawing and not _is_generator(kind):
        return f"{model} holds a model that does not draw"
    return None


def _is_generator(kind: str) -> bool:
    from .kinds import get

    try:
        return get(kind).generator
    except ValueError:
        return False


def _draws(checkpoint: Path) -> bool:
    """Whether the checkpoint holds a model that draws (a generator kind, drawviz.kinds): the blur page needs one."""
    return _not_a_checkpoint(checkpoint, drawing=True) is None


def _run_notebooks(wanted, declared, common, run, out_dir: Path, checkpoint: Path, result: dict, log, kernel) -> None:
    """The run's notebooks in order, in one kernel; a notebook after train needs the model it made."""
    for nb in wanted:
        if _stopping.asked:  # stopped by a signal: what is left is not started
            result["notebooks"][nb] = {"status": "not run", "error": f"stopped by {_stopping.asked}"}
            result["status"] = "interrupted"
            continue
        if nb != "train" and nb not in STANDALONE and not checkpoint.exists():
            result["notebooks"][nb] = {"status": "not run", "error": "no model (train.ipynb did not produce one)"}
            result["status"] = "failed"
            log(f"  {nb}.ipynb: not run (no model)")
            continue
        (out_dir / f"{nb}.json").unlink(missing_ok=True)  # a failed notebook must not leave the last run's numbers
        params = {**common, "metrics_out": str(out_dir / f"{nb}.json"), **run["parameters"]}
        if nb in STANDALONE and common.get("checkpoint_in"):  # the shipped model itself, read only
            params["checkpoint"] = common["checkpoint_in"]
        params = {k: v for k, v in params.items() if k in declared[nb]}
        result["notebooks"][nb] = _execute(nb, _resources.notebooks() / f"{nb}.ipynb", out_dir, params, log, kernel)
        if _stopping.asked and result["notebooks"][nb]["status"] != "ok":  # its cell was interrupted
            result["notebooks"][nb].update(status="interrupted", error=f"stopped by {_stopping.asked}")
            result["status"] = "interrupted"
        elif result["notebooks"][nb]["status"] != "ok":
            result["status"] = "failed"


# the parameters that make a run's model (train.ipynb's); the others (n_samples, n_figure, test_limit, ...)
# change only what the pages show, and a change of them keeps the model
MODEL_PARAMETERS = frozenset({"preset", "T", "overrides", "steps", "batch_size", "lr", "recipe", "limit", "seed", "fast", "bf16"})


def _settings(run: dict) -> dict:
    """What a run's model depends on, as JSON would store it."""
    made = {k: v for k, v in run["parameters"].items() if k in MODEL_PARAMETERS}
    return json.loads(json.dumps({"dataset": run["dataset"], "model": run.get("model"), "parameters": made}, default=str))


def _set_aside_if_changed(run: dict, out_dir: Path, checkpoint: Path, log) -> None:
    """A re-run into the same folder resumes its model only if the run's settings are those it was made
    with; otherwise the old model is kept aside as model.previous.pt and a new one is made."""
    stored = _read(out_dir / "run.json")
    if isinstance(stored.get("parameters"), dict):  # a run.json from before MODEL_PARAMETERS kept them all
        stored["parameters"] = {k: v for k, v in stored["parameters"].items() if k in MODEL_PARAMETERS}
    now = _settings(run)
    if checkpoint.exists() and stored and stored != now:
        changed = sorted(
            {
                k
                for k in set(stored.get("parameters", {})) | set(now["parameters"])
                if stored.get("parameters", {}).get(k) != now["parameters"].get(k)
            }
            | {k for k in ("dataset", "model") if stored.get(k) != now[k]}
        )
        aside = next(
            out_dir / name
            for name in ("model.previous.pt", *(f"model.previous-{i}.pt" for i in range(2, 10_000)))
            if not (out_dir / name).exists()
        )  # never over an earlier one
        log(
            f"  settings changed since the last report into {out_dir} ({', '.join(changed)}): "
            f"its model is kept as {aside.name} and a new one is made"
        )
        checkpoint.replace(aside)
    write_json(out_dir / "run.json", now)


def _images(result: dict) -> Optional[int]:
    """The test images a run's bound is on (its train.ipynb's record), or None: not measured."""
    return result["train"].images if result.get("train") is not None else None


def compare_blur(results: list[dict], out: Path, data_root, device: str, log) -> Optional[dict]:
    """blur.ipynb once more over every run with a model: the cross-dataset comparison."""
    models = [
        {"name": r["run"], "dataset": r["dataset"], "checkpoint": r["checkpoint"], "metrics": str(out / r["run"] / "train.json")}
        for r in results
        if r.get("checkpoint")
    ] + [
        # bound measured by blur.ipynb, on as many test images as the run's own (the same ones: class-balanced, seed 0)
        {"name": name, "dataset": r["dataset"], "checkpoint": model, "metrics": None, "test_images": _images(r)}
        for r in results
        if r.get("checkpoint")
        for name, model in (r.get("beside") or {}).items()
    ]
    if len(models) < 2:
        return None
    log(f"comparison: blur across {', '.join(m['name'] for m in models)}")
    out_dir = out / COMPARISON[bool(data_root)]
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {
        "models": models,
        "data_root": str(data_root) if data_root else None,
        "device": device,
        "metrics_out": str(out_dir / "blur.json"),
        "title": "all runs",
    }
    with _Kernel() as kernel:
        return _execute("blur", _resources.notebooks() / "blur.ipynb", out_dir, params, log, kernel)


# ----------------------------------------------------------------------------- index


def _fmt(x, spec=".2f") -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


# the offline runs' index and comparison, and the data runs': neither render overwrites the other's pages
# (reports/runs.yaml names the data runs apart from the offline ones for the same reason)
INDEX = {False: "index.html", True: "data.html"}
COMPARISON = {False: "comparison", True: "data-comparison"}


def _thumbnail(r: dict, run_url: str) -> str:
    """A run's model drawing, small, beside its numbers: its GIF of prior samples drawn step by step."""
    if not r.get("gif"):
        return ""
    return (
        f"<div><img class=thumb src='{run_url}/{r['gif']}' alt='{html.escape(r['run'])}: prior samples drawn step by step'></div>"
    )


def _bound(tr) -> str:
    return f"{_fmt(tr.nll_bound, '.1f')}<div class=small>{_fmt(tr.bits_per_dim, '.3f')} bits/dim</div>"


def _classified(cl) -> str:
    """A classifier's cell in the bound's column: its error, the paper's, and whether its last glimpse finds the digit."""
    pct = lambda x: _fmt(100 * x if x is not None else None, ".1f")
    return (
        f"{pct(cl.error)} % error<div class=small>paper {pct(cl.paper_error)} %; last glimpse on the digit "
        f"{pct(cl.last_covers)} % (chance {pct(cl.chance_covers)} %)</div>"
    )


def _asked(ak) -> str:
    """A conditional model's cell in the bound's column: the share of its drawings the judge reads as asked."""
    pct = lambda x: _fmt(100 * x if x is not None else None, ".1f")
    held = f"; held-out captions {pct(ak.held_out_right)} %" if ak.held_out_right is not None else ""
    return (
        f"{pct(ak.right)} % drawn as asked<div class=small>{_fmt(ak.drawings, ',')} drawings of a "
        f"{html.escape(str(ak.condition))}, judged; worst {pct(ak.worst)} %{held}</div>"
    )


def _steps(tr, cl, ak):
    """The run's T: the trained model's, else the classifier's glimpses or the conditional model's steps (runs
    without a train notebook)."""
    return tr.config.get("T") or (cl.glimpses if cl else None) or (ak.T if ak else None)


def write_index(results: list[dict], out: Path, comparison: Optional[dict], runs_file: Path, data_root) -> Path:
    rows = []
    folder = COMPARISON[bool(data_root)]
    compared = (_metrics.Blur.read(out / folder / "blur.json") if comparison is not None else None) or _metrics.Blur()
    for r in results:
        found = r.get("train")
        tr, at = found or _metrics.Trained(), r.get("attention") or _metrics.Attention()
        cl, ak = r.get("classify"), r.get("asked")
        sh = r.get("sharpness") or compared.runs.get(r["run"], {})
        model = Path(tr.model_file).name if tr.model_file else "–"
        hours = f", {_fmt(tr.cpu_hours, '.1f')} CPU h" if tr.cpu_hours is not None else ""
        trained = (
            (
                f"{_fmt(tr.step, ',')} steps<div class=small>{_fmt(tr.epochs, '.1f')} epochs{hours} of "
                f"{html.escape(str(tr.trained_on or '?'))}; {html.escape(model)}</div>"
            )
            if found
            else "–"
        )
        tested = (
            (
                f"{_fmt(tr.images, ',')}<div class=small>{html.escape(tr.likelihood or '')}"
                f"{' (binarised)' if tr.binarization != 'none' else ''}</div>"
            )
            if found
            else "–"
        )
        links = " ".join(
            f'<a href="{html.escape(r["run"])}/{nb}.html" class="{v["status"].replace(" ", "-")}">{nb}</a>'
            if (out / r["run"] / f"{nb}.html").exists()
            else f'<span class="{v["status"].replace(" ", "-")}">{nb}</span>'
            for nb, v in r["notebooks"].items()
        )
        failed = [f"{nb}: {v.get('error') or v['status']}" for nb, v in r["notebooks"].items() if v["status"] != "ok"]
        if r.get("error"):  # the run itself failed (e.g. its Dask worker was lost)
            failed.insert(0, r["error"])
        run_url = html.escape(r["run"])
        gif = f" <a href='{run_url}/{r['gif']}'>GIF</a>" if r.get("gif") else ""
        metrics_link = f" <a href='{run_url}/metrics.json'>metrics</a>" if (out / r["run"] / "metrics.json").exists() else ""
        ratio = lambda kind, m: _fmt(sh.get(f"{kind}/{m}"), ".2g")  # ratios span decades
        off = 100 * at.write_off_image if at.write_off_image is not None else None
        attention = (
            f"{_fmt(at.write_footprint, '.2f')} of the width<div class=small>centres spread "
            f"{_fmt(at.write_spread_px, '.1f')} px, {_fmt(off, '.0f')} % off the image</div>"
            if at.write_footprint is not None
            else "–"
        )
        sharp = (
            f"samples {ratio('samples', 'laplacian_variance')} · {ratio('samples', 'high_frequency_share')}"
            f"<div class=small>recon. {ratio('reconstructions', 'laplacian_variance')} · "
            f"{ratio('reconstructions', 'high_frequency_share')}</div>"
            if sh
            else "–"
        )
        rows.append(
            f"<tr><td>{html.escape(r['run'])}</td><td>{html.escape(r['dataset'])}"
            f"<div class='small'>{html.escape(_data.portable(tr.source or ''))}</div></td>"
            f"<td class=num>{html.escape(str(_steps(tr, cl, ak) or '–'))}</td>"  # a record's T is text to escape
            f"<td class=num>{_classified(cl) if cl else _asked(ak) if ak else _bound(tr)}</td><td>{trained}</td>"
            f"<td>{tested}</td><td>{attention}</td>"
            f"<td class=num>{_fmt(at.edit_area, '.2f')} <span class=small>({_fmt(at.edit_area_reference, '.2f')})"
            f"</span></td><td>{sharp}</td>"
            f"<td class='{r['status']}' title='{html.escape('; '.join(failed))}'>{r['status']}"
            f"{'<div class=small>' + html.escape('; '.join(failed)) + '</div>' if failed else ''}</td>"
            f"<td>{links}{gif}{metrics_link}{_thumbnail(r, run_url)}</td></tr>"
        )
    comp = ""
    if comparison is not None:
        comp = (
            f"<p>Blur across datasets: <a href='{folder}/blur.html' class='{comparison['status']}'>"
            f"{folder}/blur.html</a> ({comparison['status']})</p>"
        )
    sibling = out / INDEX[not data_root]
    other = (
        f"<p>The {'offline' if data_root else 'data'} runs have their own index: <a href='{sibling.name}'>{sibling.name}</a>.</p>"
        if sibling.exists()
        else ""
    )
    page = string.Template((Path(__file__).parent / "templates" / "index.html").read_text(encoding="utf-8"))
    page = page.substitute(
        runs_file=html.escape(str(runs_file)),
        data_root=html.escape(str(data_root) if data_root else "none (the samples shipped with drawviz)"),
        written=time.strftime("%Y-%m-%d %H:%M"),
        rows="".join(rows),
        comparison=comp,
        other_index=other,
    )
    return _files.write_text(out / INDEX[bool(data_root)], page)


# ----------------------------------------------------------------------------- command line


def parser() -> argparse.ArgumentParser:
    """The report's own parser (``drawviz.report.main``); ``python -m drawviz report`` adds the same arguments."""
    p = argparse.ArgumentParser(
        prog="drawviz report",
        description=(
            "Run the notebooks for a list of runs and write reports/<run>/<notebook>.{ipynb,html}, "
            "reports/<run>/metrics.json and reports/index.html."
        ),
    )
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The report's arguments, on ``p``."""
    p.add_argument(
        "--runs",
        type=Path,
        default=None,
        help="runs YAML (default: reports/runs.yaml of the checkout or the installation: its 'offline' runs, "
        "or its 'data' runs when a data root is given)",
    )
    p.add_argument("--data-root", help="dataset folder (default: $DRAWVIZ_DATA; none: the samples shipped with drawviz)")
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: reports)")
    p.add_argument("--only", nargs="+", metavar="RUN", help="run only these runs of the file")
    p.add_argument("--notebooks", nargs="+", choices=ORDER, default=list(ORDER), help="which notebooks to run")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--no-comparison", action="store_true", help="skip the cross-dataset blur comparison")
    p.add_argument(
        "--workers",
        type=int,
        metavar="K",
        help="run the runs as tasks on a dask.distributed LocalCluster of K worker processes "
        "(the notebooks of a run in order, in one worker); needs dask[distributed]",
    )
    p.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="run the runs on an existing Dask cluster; --data-root and --out must be paths its workers see",
    )
    return p


def _on_dask(runs: list[dict], out: Path, data_root, notebooks, device: str, log, *, workers=None, scheduler=None) -> list[dict]:
    """run_one for every run as a task on a Dask cluster, each in its own worker process; results in
    the runs' order, progress printed as runs finish. A task that dies (its worker lost) is a failed run."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as err:
        raise RuntimeError(f"--workers and --scheduler need dask.distributed ({err}); pip install 'dask[distributed]'") from None
    cluster = None
    if scheduler is None:
        # one task at a time per worker; its notebooks' kernels share the machine's cores through torch's
        # threads, so K runs side by side do not oversubscribe them
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads},
        )
    client = Client(cluster if cluster is not None else scheduler)
    try:
        log(f"dask: {len(client.scheduler_info()['workers'])} worker(s) at {client.scheduler.address}")
        futures = {
            client.submit(_run_quietly, run, out, data_root, notebooks, device, key=f"run-{run['name']}", pure=False): run
            for run in runs
        }
        results = {}
        for done, future in enumerate(as_completed(futures), 1):
            run = futures[future]
            try:
                result, lines = future.result()
            except Exception as err:  # noqa: BLE001 -- the worker died or the task could not run: a failed run
                result, lines = (
                    {
                        "run": run["name"],
                        "dataset": run["dataset"],
                        "notebooks": {},
                        "status": "failed",
                        "error": f"{type(err).__name__}: {err}",
                    },
                    [],
                )
            log(f"[{done}/{len(runs)}] {run['name']} ({run['dataset']}): {result['status']}")
            for line in lines:
                log(line)
            results[run["name"]] = result
        return [results[run["name"]] for run in runs]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _run_quietly(run: dict, out: Path, data_root, notebooks, device: str):
    """run_one in a Dask worker: its log lines travel back with the result."""
    lines: list[str] = []
    return run_one(run, out, data_root, notebooks, device, lines.append), lines


def main(argv=None) -> int:
    return run(parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """The report for parsed arguments (``python -m drawviz report ...``)."""
    data_root = args.data_root or os.environ.get("DRAWVIZ_DATA") or None
    if data_root:  # notebooks run with notebooks/ as their folder: hand them absolute paths only
        data_root = str(Path(data_root).expanduser().resolve())
    runs_file = args.runs or _resources.runs_file()
    try:
        runs = load_runs(runs_file, data_root)
    except (OSError, ValueError) as err:
        print(f"drawviz report: error: {err}", file=sys.stderr)
        return 2
    if args.only:
        missing = set(args.only) - {r["name"] for r in runs}
        if missing:
            print(f"drawviz report: error: no runs named {sorted(missing)} in {runs_file}", file=sys.stderr)
            return 2
        runs = [r for r in runs if r["name"] in args.only]
    if not runs:
        print(f"drawviz report: error: {runs_file} lists no runs", file=sys.stderr)
        return 2
    out = args.out.resolve()  # notebooks run in notebooks/: every path handed to them is absolute
    sources = _resources.notebooks().resolve()
    if sources == out or out in sources.parents:  # a run named "notebooks" would write over them
        print(
            f"drawviz report: error: --out {out} holds the notebooks the report runs ({sources}): a run's pages "
            f"could overwrite them; choose another folder (default: reports/)",
            file=sys.stderr,
        )
        return 2
    from .checkpoints import CheckpointError, check_writable

    try:
        check_writable(out / "index.html")
    except CheckpointError as err:
        print(f"drawviz report: error: {err}".replace("--checkpoint PATH", "--out DIR"), file=sys.stderr)
        return 2
    log = lambda line: print(line, flush=True)
    start = time.perf_counter()
    log(
        f"drawviz report: {len(runs)} run(s) from {runs_file} -> {out}/"
        f"{'' if data_root else ' (no data root: the samples shipped with drawviz)'}"
    )
    if args.workers is not None and args.workers < 1:
        print("drawviz report: error: --workers must be a positive number of processes", file=sys.stderr)
        return 2
    if args.workers or args.scheduler:
        try:
            results = _on_dask(
                runs, out, data_root, args.notebooks, args.device, log, workers=args.workers, scheduler=args.scheduler
            )
        except Exception as err:  # noqa: BLE001 -- no cluster to run on (a bad address, dask missing): say so
            print(
                f"drawviz report: error: could not run on Dask "
                f"({args.scheduler or f'{args.workers} local workers'}): {type(err).__name__}: {err}",
                file=sys.stderr,
            )
            return 2
    else:
        results = _in_turn(runs, out, data_root, args, log)
    comparison = None
    if not args.no_comparison and "blur" in args.notebooks and not _stopping.asked:
        comparison = compare_blur(results, out, data_root, args.device, log)
    try:
        index = write_index(results, out, comparison, runs_file, data_root)
    except _files.WriteError as err:  # the runs' pages are written; only the index is missing
        print(f"drawviz report: error: {err}", file=sys.stderr)
        return 1
    if _stopping.asked:
        done = sum(r["status"] not in ("interrupted", "not run") for r in results)
        log(
            f"stopped by {_stopping.asked} after {time.perf_counter() - start:.0f} s: {index} shows the {done} run(s) "
            f"finished; the same command again runs them all (each run's model is kept and resumed)"
        )
        return 130
    failed = [r["run"] for r in results if r["status"] == "failed"]
    if comparison is not None and comparison["status"] != "ok":
        failed.append("comparison")
    log(f"done in {time.perf_counter() - start:.0f} s: {index}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _in_turn(runs: list[dict], out: Path, data_root, args, log) -> list[dict]:
    """The runs one after the other in this process; Ctrl-C or SIGTERM interrupts the running cell and stops
    here (drawviz.report._Stopping), and the runs not reached are listed as not run."""
    _stopping.asked = None
    restore = _stopping.catching()
    results = []
    try:
        for i, run in enumerate(runs, 1):
            if _stopping.asked:
                results.append({"run": run["name"], "dataset": run["dataset"], "notebooks": {}, "status": "not run"})
                continue
            log(f"[{i}/{len(runs)}] {run['name']} ({run['dataset']})")
            try:
                results.append(run_one(run, out, data_root, args.notebooks, args.device, log))
            except Exception as err:  # noqa: BLE001 -- one run's failure (a full disk, ...) is not the report's
                log(f"  failed: {type(err).__name__}: {err}")
                results.append(
                    {
                        "run": run["name"],
                        "dataset": run["dataset"],
                        "notebooks": {},
                        "status": "failed",
                        "error": f"{type(err).__name__}: {str(err)[:300]}",
                    }
                )
    finally:
        restore()
    return results
