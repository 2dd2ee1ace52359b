"""Batch reports: run the notebooks for a list of runs and index the results.

``python -m drawviz report`` executes ``notebooks/{train,attention,error_images,blur}.ipynb``
through papermill for each run of a small YAML file, writes ``reports/<run>/<notebook>.{ipynb,html}``,
``reports/<run>/metrics.json`` and ``drawing.gif``, a cross-dataset page ``reports/comparison/blur.html``,
and an index with a table of runs.  With no arguments and no data root it shows the shipped models
(MNIST, Fashion-MNIST, CIFAR-10) on the samples shipped with drawviz, so it works offline on a fresh
machine (index ``reports/index.html``); with ``--data-root`` (or ``DRAWVIZ_DATA``) it uses the full
datasets (index ``reports/data.html``, so neither run overwrites the other's).

The small helpers at the top (``datasets``, ``model_for``, ``write_json``) are what the
notebooks call, so that the notebooks stay thin. papermill and nbconvert load only in ``main``.
"""
from __future__ import annotations

import argparse
import functools
import html
import json
import math
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Optional

from . import data as _data

__all__ = ["NOTEBOOKS", "DEFAULT_RUNS", "datasets", "load_split", "describe_training", "colour_note", "binarization", "model_for", "optional_model",
           "print_evaluations", "write_json",
           "main"]

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
DEFAULT_RUNS = REPO / "reports" / "runs.yaml"
ORDER = ("train", "attention", "error_images", "interventions", "blur")


# ----------------------------------------------------------------------------- notebook helpers

def load_split(dataset: str, split: str, data_root=None, limit: Optional[int] = None, seed: int = 0):
    """One split as an ImageSet (``drawviz.data.load``; the shipped samples split 800 / 200 there);
    with a limit, a class-balanced subset drawn with ``seed`` (never "the first n")."""
    return _data.load(dataset, split, data_root).balanced(limit, seed=seed)


def datasets(dataset: str, data_root=None, limit: Optional[int] = None, test_limit: Optional[int] = None,
             seed: int = 0):
    """(train, test) ImageSets, as load_split gives them."""
    return (load_split(dataset, "train", data_root, limit, seed=seed),
            load_split(dataset, "test", data_root, test_limit, seed=seed))


def test_images(dataset: str, data_root=None, n: int = 64, seed: int = 0):
    """n class-balanced test images drawn with ``seed``, binarised with ``seed`` for greyscale data: the
    images as the test bound sees them (batch, C, H, W)."""
    images = load_split(dataset, "test", data_root, n, seed=seed).images
    return _data.binarize(images, seed=seed) if binarization(dataset) else images


def describe_training(summary: dict) -> str:
    """One line from train.training_summary: what the model was trained on, how long, where."""
    def num(x, spec):
        return "?" if x is None else format(x, spec)
    hw = summary.get("hardware") or {}
    where = hw.get("name") if isinstance(hw, dict) else str(hw)
    if isinstance(hw, dict) and hw.get("threads"):
        where = f"{where}, {hw['threads']} thread{'s' if hw['threads'] != 1 else ''}"
    model = Path(summary["model_file"]).name if summary.get("model_file") else "model"
    return (f"{model}: trained on {summary.get('trained_on') or '?'} ({num(summary.get('train_images'), ',')} images), "
            f"{num(summary.get('steps'), ',')} steps = {num(summary.get('epochs'), '.1f')} epochs, "
            f"{num(summary.get('minutes'), '.0f')} min" + (f" on {where}" if where else ""))


def colour_note(model):
    """A Markdown note for colour figures: what the canvas shows and what the likelihood is worth."""
    from IPython.display import Markdown

    from .likelihood import describe
    return Markdown(f"**Colour images.** The canvas shows σ(c_t), the mean of each subpixel's distribution; "
                    f"{describe(model.config.likelihood, binarized=False)}.")


def binarization(dataset: str) -> Optional[str]:
    """Greyscale data are binarised afresh each batch (the paper's MNIST setting); colour is not."""
    return _data.default_binarize(dataset)


def model_for(checkpoint, dataset: str = "mnist-sample", data_root=None, *, preset: Optional[str] = None,
              T: int = 8, steps: int = 300, batch_size: int = 64, seed: int = 0, device="auto",
              overrides: Optional[dict] = None):
    """The model in ``checkpoint``; when there is none yet, train a small one there first.

    Lets every notebook run on its own: the fallback is train.ipynb's default model.
    """
    from .model import DrawConfig
    from .train import model_from_checkpoint, train

    checkpoint = Path(checkpoint)
    if not checkpoint.exists():
        print(f"no checkpoint at {checkpoint}: training a small model on {dataset} first ({steps} steps, T={T})")
        config = DrawConfig.preset(preset or _data.default_preset(dataset), T=T, **(overrides or {}))
        train_set = load_split(dataset, "train", data_root)
        train(config, train_set, steps=steps, batch_size=batch_size, seed=seed, device=device,
              binarize=binarization(dataset), checkpoint=checkpoint, progress=False,
              train_args={"dataset": dataset, "data_root": str(data_root) if data_root else None})
    return model_from_checkpoint(checkpoint, device=device)


def optional_model(checkpoint, device="auto", like=None, dataset: Optional[str] = None):
    """The model in ``checkpoint``, or None when no path is given, no file is there, its images
    differ in shape from those of the model ``like``, or it was trained on another dataset than
    ``dataset`` (a sample counts as its full dataset). For a reference a figure can do without, such
    as the no-attention model beside an MNIST model: an MNIST reference says nothing about Fashion-MNIST."""
    if not checkpoint or not Path(checkpoint).exists():
        return None
    from .train import load_checkpoint, model_from_checkpoint
    state = load_checkpoint(checkpoint)
    model = model_from_checkpoint(checkpoint, device=device, state=state)
    if like is not None and model.config.image_shape != like.config.image_shape:
        print(f"{checkpoint} draws {model.config.image_shape} images, not {like.config.image_shape}: not used")
        return None
    trained_on = state.get("train_args", {}).get("dataset")
    if dataset is not None and trained_on is not None and _data.full_name(trained_on) != _data.full_name(dataset):
        print(f"{checkpoint} was trained on {trained_on}, not {_data.full_name(dataset)}: not used")
        return None
    return model


def print_evaluations(row: dict) -> None:
    """A train() callback: one printed line per test evaluation (stays in the saved notebook and report)."""
    if math.isfinite(row.get("test_nll_bound", math.nan)):
        print(f"step {row['step']:>6}: train loss {row['loss']:.1f}, test NLL bound {row['test_nll_bound']:.2f} nats "
              f"({row['seconds']:.0f} s)", flush=True)


def _plain(value):
    """JSON-safe: NaN/inf become null, numpy scalars and paths become Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path, obj) -> Path:
    """Write atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}.{threading.get_ident()}")  # writers never share one
    tmp.write_text(json.dumps(_plain(obj), indent=2))
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------- runs file

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # a plain folder name: never "..", "/x" or "a/b"


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
            raise ValueError(f"{path}: run {i + 1} is named {run['name']!r}; a run name is a folder name under --out: "
                             "letters, digits, '.', '_' and '-', starting with a letter or digit")
        if not isinstance(run.get("parameters") or {}, dict):
            raise ValueError(f"{path}: run {run['name']!r}: parameters must be a mapping (name: value), "
                             f"got {run['parameters']!r}")
        wrong = set(run.get("notebooks") or []) - set(ORDER)
        if wrong:
            raise ValueError(f"{path}: run {run['name']!r} lists unknown notebooks {sorted(wrong)}; choose from "
                             f"{', '.join(ORDER)}")
        if run["name"] in seen:
            raise ValueError(f"{path}: two runs are named {run['name']!r}")
        seen.add(run["name"])
        unknown = set(run) - {"name", "dataset", "parameters", "model", "optional", "notebooks"}
        if unknown:
            raise ValueError(f"{path}: run {run['name']!r} has unknown keys {sorted(unknown)}")
        run = dict(run, parameters=dict(run.get("parameters") or {}))
        if run.get("model"):
            model = Path(run["model"])
            run["model"] = model if model.is_absolute() else (Path(path).parent / model).resolve()
        runs.append(run)
    return runs


# ----------------------------------------------------------------------------- execution

_TEMPLATE = """{%- extends 'index.html.j2' -%}
{#- Self-contained: no require.js, MathJax, mermaid or widget scripts from a CDN. -#}
{% block html_head_js_requirejs %}{% endblock %}
{% block html_head_js_mathjax %}{% endblock %}
{% block html_head_js_mermaidjs %}{% endblock %}
{% block jupyter_widgets %}{% endblock %}
"""


# long lines (papermill's injected parameters: a list of runs) wrap instead of being cut off at the page edge
_WRAP = "<style>.jp-InputArea-editor pre, .jp-OutputArea-output pre { white-space: pre-wrap; overflow-wrap: anywhere; }</style>\n"


def to_html(notebook: Path, target: Path) -> Path:
    """nbconvert's lab HTML with every script inline: the static scrubber works offline."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"drawviz.html.j2": _TEMPLATE})],
                            template_file="drawviz.html.j2")
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    body = body.replace("</head>", _WRAP + "</head>", 1)
    target.write_text(body, encoding="utf-8")
    return target


@functools.lru_cache(maxsize=None)  # papermill parses the notebook: once per process is enough
def _declared(notebook: Path) -> frozenset[str]:
    import papermill as pm

    return frozenset(pm.inspect_notebook(str(notebook)))


def _execute(name: str, notebook: Path, out_dir: Path, parameters: dict, log) -> dict:
    import papermill as pm

    target = out_dir / f"{name}.ipynb"
    tick = time.perf_counter()
    status, error = "ok", None
    try:
        pm.execute_notebook(str(notebook), str(target), parameters=parameters, kernel_name="python3",
                            cwd=str(NOTEBOOKS), progress_bar=False, log_output=False)
    except Exception as err:  # PapermillExecutionError, a dead kernel, ...: this notebook failed, go on
        status = "failed"
        error = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"[:500]
    seconds = time.perf_counter() - tick
    if target.exists():
        try:
            to_html(target, out_dir / f"{name}.html")
        except Exception as err:
            status, error = "failed", error or f"HTML export failed: {err}"
    log(f"  {name}.ipynb: {status} ({seconds:.0f} s){'  ' + error if error else ''}")
    return {"status": status, "seconds": round(seconds, 1), "error": error}


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


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
    common = {"dataset": dataset, "data_root": str(data_root) if data_root else None, "checkpoint": str(checkpoint),
              "device": device, "title": name, "progress": False, "gif_out": str(out_dir / "drawing.gif"),
              "live": False}  # no kernel behind a static report: no live widgets
    model = run.get("model")
    if model is not None and Path(model).exists():
        common["checkpoint_in"] = str(model)
        log(f"  using the shipped model {model}")
    elif model is not None:
        log(f"  no model at {model}: training one")
    wanted = [nb for nb in ORDER if nb in (run.get("notebooks") or notebooks)]
    declared = {nb: _declared(NOTEBOOKS / f"{nb}.ipynb") for nb in wanted}
    unused = set(run["parameters"]) - set().union(*declared.values())
    if unused:
        log(f"  warning: no notebook takes the parameters {sorted(unused)}")
    for nb in wanted:
        if nb != "train" and not checkpoint.exists():
            result["notebooks"][nb] = {"status": "not run", "error": "no model (train.ipynb did not produce one)"}
            result["status"] = "failed"
            log(f"  {nb}.ipynb: not run (no model)")
            continue
        params = {**common, "metrics_out": str(out_dir / f"{nb}.json"), **run["parameters"]}
        params = {k: v for k, v in params.items() if k in declared[nb]}
        result["notebooks"][nb] = _execute(nb, NOTEBOOKS / f"{nb}.ipynb", out_dir, params, log)
        if result["notebooks"][nb]["status"] != "ok":
            result["status"] = "failed"
    result["train"] = _read(out_dir / "train.json")
    result["errors"] = _read(out_dir / "error_images.json")
    result["attention"] = _read(out_dir / "attention.json")
    result["sharpness"] = _read(out_dir / "blur.json").get(name, {})
    result["checkpoint"] = str(checkpoint) if checkpoint.exists() else None
    result["gif"] = "drawing.gif" if (out_dir / "drawing.gif").exists() else None
    write_json(out_dir / "metrics.json", result)
    return result


def compare_blur(results: list[dict], out: Path, data_root, device: str, log) -> Optional[dict]:
    """blur.ipynb once more over every run with a model: the cross-dataset comparison."""
    models = [{"name": r["run"], "dataset": r["dataset"], "checkpoint": r["checkpoint"],
               "metrics": str(out / r["run"] / "train.json")}
              for r in results if r.get("checkpoint")]
    if len(models) < 2:
        return None
    log(f"comparison: blur across {', '.join(m['name'] for m in models)}")
    out_dir = out / "comparison"
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"models": models, "data_root": str(data_root) if data_root else None, "device": device,
              "metrics_out": str(out_dir / "blur.json"), "title": "all runs"}
    return _execute("blur", NOTEBOOKS / "blur.ipynb", out_dir, params, log)


# ----------------------------------------------------------------------------- index

def _fmt(x, spec=".2f") -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


INDEX = {False: "index.html", True: "data.html"}  # the offline runs' index and the data runs': neither overwrites the other


def write_index(results: list[dict], out: Path, comparison: Optional[dict], runs_file: Path, data_root) -> Path:
    rows = []
    compared = _read(out / "comparison" / "blur.json") if comparison is not None else {}
    for r in results:
        tr, at = r.get("train", {}), r.get("attention", {})
        sh = r.get("sharpness") or compared.get(r["run"], {})
        model = Path(tr["model_file"]).name if tr.get("model_file") else "–"
        trained = (f"{_fmt(tr.get('step'), ',')} steps<div class=small>{_fmt(tr.get('epochs'), '.1f')} epochs of "
                   f"{html.escape(str(tr.get('trained_on') or '?'))}; {html.escape(model)}</div>") if tr else "–"
        tested = (f"{_fmt(tr.get('images'), ',')}<div class=small>{html.escape(tr.get('likelihood', ''))}"
                  f"{' (binarised)' if tr.get('binarization', 'none') != 'none' else ''}</div>") if tr else "–"
        links = " ".join(
            f'<a href="{html.escape(r["run"])}/{nb}.html" class="{v["status"].replace(" ", "-")}">{nb}</a>'
            if (out / r["run"] / f"{nb}.html").exists() else f'<span class="{v["status"].replace(" ", "-")}">{nb}</span>'
            for nb, v in r["notebooks"].items())
        failed = [f"{nb}: {v.get('error') or v['status']}" for nb, v in r["notebooks"].items() if v["status"] != "ok"]
        run_url = html.escape(r["run"])
        gif = f" <a href='{run_url}/{r['gif']}'>GIF</a>" if r.get("gif") else ""
        metrics_link = (f" <a href='{run_url}/metrics.json'>metrics</a>" if (out / r["run"] / "metrics.json").exists()
                        else "")
        ratio = lambda kind, m: _fmt(sh.get(f"{kind}/{m}"), ".2g")  # ratios span decades
        rows.append(
            f"<tr><td>{html.escape(r['run'])}</td><td>{html.escape(r['dataset'])}"
            f"<div class='small'>{html.escape(_data.portable(tr.get('source', '')))}</div></td>"
            f"<td>{tr.get('config', {}).get('T', '–')}</td><td>{_fmt(tr.get('nll_bound'), '.1f')}</td>"
            f"<td>{_fmt(tr.get('bits_per_dim'), '.3f')}</td><td>{trained}</td><td>{tested}</td>"
            f"<td>{_fmt(at.get('write_footprint'), '.2f')}</td><td>{_fmt(at.get('write_spread_px'), '.1f')}</td>"
            f"<td>{_fmt(100 * at['write_off_image'] if at.get('write_off_image') is not None else None, '.0f')}</td>"
            f"<td>{_fmt(at.get('edit_area'), '.3f')} <span class=small>({_fmt(at.get('edit_area_reference'), '.3f')})"
            f"</span></td>"
            f"<td>{ratio('samples', 'laplacian_variance')}</td><td>{ratio('samples', 'high_frequency_share')}</td>"
            f"<td>{ratio('reconstructions', 'laplacian_variance')}</td>"
            f"<td>{ratio('reconstructions', 'high_frequency_share')}</td>"
            f"<td class='{r['status']}' title='{html.escape('; '.join(failed))}'>{r['status']}"
            f"{'<div class=small>' + html.escape('; '.join(failed)) + '</div>' if failed else ''}</td>"
            f"<td>{links}{gif}{metrics_link}</td></tr>")
    comp = ""
    if comparison is not None:
        comp = (f"<p>Blur across datasets: <a href='comparison/blur.html' class='{comparison['status']}'>"
                f"comparison/blur.html</a> ({comparison['status']})</p>")
    sibling = out / INDEX[not data_root]
    other = (f"<p>The {'offline' if data_root else 'data'} runs have their own index: "
             f"<a href='{sibling.name}'>{sibling.name}</a>.</p>" if sibling.exists() else "")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>drawviz reports</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} .note {{ font-size: 0.8em; color: #666; max-width: 60em; }} th, td {{ border-bottom: 1px solid #ddd; padding: 0.4em 0.7em; text-align: left; vertical-align: top; }}
th {{ background: #f4f4f4; }} .small {{ font-size: 0.8em; color: #666; max-width: 28em; }}
.ok {{ color: #1a7f37; }} .failed, .not-run {{ color: #cf222e; font-weight: bold; }} .skipped {{ color: #888; }}
a {{ margin-right: 0.5em; }}
</style></head><body>
<h1>DRAW reports</h1>
<p>Runs from <code>{html.escape(str(runs_file))}</code>; data root: <code>{html.escape(str(data_root) if data_root else 'none (the samples shipped with drawviz)')}</code>;
written {time.strftime('%Y-%m-%d %H:%M')}.</p>
<table>
<tr><th>run</th><th>dataset (source)</th><th>T</th><th>NLL bound<br>nats/image</th><th>bits/dim</th>
<th>training</th><th>test images<br>(likelihood)</th>
<th>write footprint<br>share of width</th><th>write centre<br>spread, px</th><th>write centre<br>off image, %</th>
<th>edit area<br>(no attention)</th>
<th>samples / test<br>Laplacian var.</th><th>samples / test<br>HF share</th>
<th>recon. / test<br>Laplacian var.</th><th>recon. / test<br>HF share</th><th>status</th><th>reports</th></tr>
{''.join(rows)}
</table>
{comp}
{other}
<p class="note">NLL bound: the test negative ELBO in nats per image (an upper bound on −log p(x)), on the run's test
images (class-balanced, seed 0); greyscale images are binarised stochastically with fixed seed 0 (no
fixed-binarisation MNIST is used) under a Bernoulli likelihood; colour images under a discretised logistic on the
8-bit values ("logistic", bits/dim comparable with published figures) or, for models that use it, a Bernoulli on
intensities ("bernoulli": a cross-entropy, not a likelihood of 8-bit images). Training: the model's optimiser
steps and epochs, what it was trained on, and its file. Sharpness ratios:
mean over generated (or reconstructed) images of the variance of the Laplacian, and of the share of spectral energy
above half the Nyquist frequency, divided by the same mean over test images; below 1 is blurrier than the data.
CIFAR-10 read from the JPEG archive is re-encoded at quality 75, which smooths the test images a little.
Attention diagnostics (attention.html has the table and its per-step curves), over the steps after the first 10 % of
a reconstruction of the run's test images: write footprint N·δ + 2σ as a share of the image width (median);
spread of the write centre across images (0: windows that ignore the input); write centres off the image;
edit area, the share of pixels receiving 90 % of a step's canvas change (median; in brackets the model without
attention, models/mnist-noattn.pt, on the same images; 0.9: a change spread evenly over the image).</p>
</body></html>
"""
    path = out / INDEX[bool(data_root)]
    path.write_text(page, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- command line

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drawviz report", description=(
        "Run the notebooks for a list of runs and write reports/<run>/<notebook>.{ipynb,html}, "
        "reports/<run>/metrics.json and reports/index.html."))
    p.add_argument("--runs", type=Path, default=None,
                   help=f"runs YAML (default: {DEFAULT_RUNS.relative_to(REPO)}: its 'offline' runs, "
                        "or its 'data' runs when a data root is given)")
    p.add_argument("--data-root", help="dataset folder (default: $DRAWVIZ_DATA; none: the samples shipped with drawviz)")
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: reports)")
    p.add_argument("--only", nargs="+", metavar="RUN", help="run only these runs of the file")
    p.add_argument("--notebooks", nargs="+", choices=ORDER, default=list(ORDER), help="which notebooks to run")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--no-comparison", action="store_true", help="skip the cross-dataset blur comparison")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    data_root = args.data_root or os.environ.get("DRAWVIZ_DATA") or None
    if data_root:  # notebooks run with notebooks/ as their folder: hand them absolute paths only
        data_root = str(Path(data_root).expanduser().resolve())
    runs_file = args.runs or DEFAULT_RUNS
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
    from .train import CheckpointError, check_writable
    try:
        check_writable(out / "index.html")
    except CheckpointError as err:
        print(f"drawviz report: error: {err}".replace("--checkpoint PATH", "--out DIR"), file=sys.stderr)
        return 2
    log = lambda line: print(line, flush=True)
    start = time.perf_counter()
    log(f"drawviz report: {len(runs)} run(s) from {runs_file} -> {out}/"
        f"{'' if data_root else ' (no data root: the samples shipped with drawviz)'}")
    results = []
    for i, run in enumerate(runs, 1):
        log(f"[{i}/{len(runs)}] {run['name']} ({run['dataset']})")
        results.append(run_one(run, out, data_root, args.notebooks, args.device, log))
    comparison = None
    if not args.no_comparison and "blur" in args.notebooks:
        comparison = compare_blur(results, out, data_root, args.device, log)
    index = write_index(results, out, comparison, runs_file, data_root)
    failed = [r["run"] for r in results if r["status"] == "failed"]
    if comparison is not None and comparison["status"] != "ok":
        failed.append("comparison")
    log(f"done in {time.perf_counter() - start:.0f} s: {index}"
        + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0
