"""What a notebook page needs: its data, its model, its metrics; so the notebooks stay one call per figure.

Every notebook in notebooks/ imports this module (``from drawviz import pages``); ``drawviz.report`` runs
the notebooks and indexes what they write.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from . import data as _data
from . import files as _files
from .metrics import Trained, json_safe

__all__ = [
    "load_split",
    "datasets",
    "test_images",
    "describe_training",
    "colour_note",
    "binarization",
    "model_for",
    "optional_model",
    "print_evaluations",
    "write_json",
    "campaign_figure",
    "blur_run",
]


# A notebook's checkpoint parameters name files the same way from any working folder:
SHIPPED = "shipped:"  # "shipped:mnist.pt": a model shipped with drawviz (drawviz.resources.models()), read only
RUNS = "runs:"  # "runs:mnist-sample.pt": a file in the project's own runs/ folder (made when needed)


def runs_dir() -> Path:
    """The project's own runs/ folder: the checkout's (ignored by git), or for an installed drawviz, whose
    drawviz/shipped/ may not be writable, ~/.cache/drawviz/runs."""
    from . import resources

    home = resources.home()
    return home / "runs" if (home / "pyproject.toml").exists() else Path.home() / ".cache" / "drawviz" / "runs"


def resolve(checkpoint) -> Optional[Path]:
    """A checkpoint parameter as a path: ``shipped:NAME`` in drawviz's models/, ``runs:NAME`` in runs_dir(),
    anything else as given (relative to the working folder: a file the user named); None stays None."""
    if checkpoint is None or checkpoint == "":
        return None
    text = str(checkpoint)
    if text.startswith(SHIPPED):
        from . import resources

        return resources.models() / text[len(SHIPPED) :]
    if text.startswith(RUNS):
        return runs_dir() / text[len(RUNS) :]
    return Path(text).expanduser()


def load_split(dataset: str, split: str, data_root=None, limit: Optional[int] = None, seed: int = 0):
    """One split as an ImageSet (``drawviz.data.load``; the shipped samples split 800 / 200 there);
    with a limit, a class-balanced subset drawn with ``seed`` (never "the first n")."""
    return _data.load(dataset, split, data_root).balanced(limit, seed=seed)


def datasets(dataset: str, data_root=None, limit: Optional[int] = None, test_limit: Optional[int] = None, seed: int = 0):
    """(train, test) ImageSets, as load_split gives them."""
    return (
        load_split(dataset, "train", data_root, limit, seed=seed),
        load_split(dataset, "test", data_root, test_limit, seed=seed),
    )


def test_images(dataset: str, data_root=None, n: int = 64, seed: int = 0, likelihood: str = "bernoulli"):
    """n class-balanced test images drawn with ``seed``, binarised with ``seed`` where the likelihood models
    0/1 pixels of greyscale data: the images as the test bound sees them (batch, C, H, W)."""
    images = load_split(dataset, "test", data_root, n, seed=seed).images
    return _data.binarize(images, seed=seed) if binarization(dataset, likelihood) else images


def describe_training(summary: dict) -> str:
    """One line from checkpoints.training_summary: what the model was trained on, how long, where."""

    def num(x, spec):
        return "?" if x is None else format(x, spec)

    hw = summary.get("hardware") or {}
    where = hw.get("name") if isinstance(hw, dict) else str(hw)
    if isinstance(hw, dict) and hw.get("threads"):
        where = f"{where}, {hw['threads']} thread{'s' if hw['threads'] != 1 else ''}"
    model = Path(summary["model_file"]).name if summary.get("model_file") else "model"
    return (
        f"{model}: trained on {summary.get('trained_on') or '?'} ({num(summary.get('train_images'), ',')} images), "
        f"{num(summary.get('steps'), ',')} steps = {num(summary.get('epochs'), '.1f')} epochs, "
        f"{num(summary.get('minutes'), '.0f')} min" + (f" on {where}" if where else "")
    )


def colour_note(model):
    """A Markdown note for colour figures: what the canvas shows and what the likelihood is worth."""
    from IPython.display import Markdown

    from .likelihood import describe

    return Markdown(
        f"**Colour images.** The canvas shows σ(c_t), the mean of each subpixel's distribution; "
        f"{describe(model.config.likelihood, binarized=False)}."
    )


def binarization(dataset: str, likelihood: str = "bernoulli") -> Optional[str]:
    """Greyscale data are binarised afresh each batch for the Bernoulli (the paper's MNIST setting); colour,
    and grey values under the discretised logistic, are not."""
    return _data.default_binarize(dataset, likelihood)


def model_for(checkpoint, dataset: str = "mnist-sample", data_root=None, *, device="auto", **how):
    """The model in ``checkpoint``, as checkpoint_for finds (or makes) it; ``how``: checkpoint_for's keywords."""
    from .checkpoints import model_from_checkpoint

    return model_from_checkpoint(checkpoint_for(checkpoint, dataset, data_root, device=device, **how), device=device)


def checkpoint_for(
    checkpoint,
    dataset: str = "mnist-sample",
    data_root=None,
    *,
    preset: Optional[str] = None,
    T: int = 8,
    steps: int = 300,
    batch_size: int = 64,
    seed: int = 0,
    device="auto",
    overrides: Optional[dict] = None,
    train_if_missing: bool = False,
) -> Path:
    """The file that holds the model in ``checkpoint`` (see ``resolve``: ``shipped:mnist.pt`` is the shipped model from
    any folder).

    A file the user named that is not there is an error, unless ``train_if_missing`` (the report's runs: a small
    model is trained there first). A shipped model that is missing (a damaged install) is replaced by a small
    one trained in runs_dir(), and the output says so loudly: its figures are not the shipped model's.
    """
    from .start import start_from
    from .train import train

    named = checkpoint
    checkpoint = resolve(checkpoint)
    if checkpoint is None:
        raise ValueError(f"checkpoint is {named!r}: give a file, or 'shipped:<name>.pt' for a model shipped with drawviz")
    if not checkpoint.exists():
        if not (train_if_missing or str(named).startswith(SHIPPED)):
            raise FileNotFoundError(
                f"no checkpoint at {checkpoint.absolute()} (checkpoint={named!r}, from the folder {Path.cwd()}). Give an "
                f"existing file, 'shipped:<name>.pt' for a model shipped with drawviz (in {_shipped_folder()}), or "
                f"train one first (train.ipynb, python -m drawviz train)"
            )
        if not train_if_missing:
            checkpoint = runs_dir() / f"stand-in-{_data.full_name(dataset)}-T{T}-{steps}steps.pt"
            print(
                f"WARNING: the shipped model {named!r} is missing (damaged install?). The figures below are of a SMALL "
                f"STAND-IN trained now on {dataset} ({steps} steps, T = {T}), saved as {checkpoint}, not of the shipped model."
            )
    if not checkpoint.exists():
        print(f"no checkpoint at {checkpoint}: training a small model on {dataset} first ({steps} steps, T={T})")
        # of the preset's kind (cluttered-mnist's is the read-only classifier), T only where the kind has one
        config = start_from(checkpoint, dataset=dataset, preset=preset, fields=overrides, new_model={"T": T}).config
        train_set = load_split(dataset, "train", data_root)
        train(
            config,
            train_set,
            steps=steps,
            batch_size=batch_size,
            seed=seed,
            device=device,
            binarize=binarization(dataset, getattr(config, "likelihood", None)),
            checkpoint=checkpoint,
            progress=False,
            dataset=dataset,
            data_root=str(data_root) if data_root else None,
        )
    return checkpoint


def _shipped_folder() -> str:
    from . import resources

    try:
        return str(resources.models())
    except resources.ResourcesNotFound:
        return "drawviz's models/, not found"


def optional_model(checkpoint, device="auto", like=None, dataset: Optional[str] = None):
    """The model in ``checkpoint``, or None when no path is given, no file is there, its images
    differ in shape from those of the model ``like``, or it was trained on another dataset than
    ``dataset`` (a sample counts as its full dataset). For a reference a figure can do without, such
    as the no-attention model beside an MNIST model: an MNIST reference says nothing about Fashion-MNIST."""
    checkpoint = resolve(checkpoint)
    if checkpoint is None or not checkpoint.exists():
        return None
    from .checkpoints import load_checkpoint, model_from_checkpoint, settings_of

    state = load_checkpoint(checkpoint)
    model = model_from_checkpoint(checkpoint, device=device, state=state)
    if like is not None and model.config.image_shape != like.config.image_shape:
        c, o = model.config, like.config
        print(
            f"the reference {checkpoint.name} draws {c.height}×{c.width}×{c.channels} images, not this model's "
            f"{o.height}×{o.width}×{o.channels}: shown without it"
        )
        return None
    trained_on = settings_of(state).get("dataset")
    if dataset is not None and trained_on is not None and _data.full_name(trained_on) != _data.full_name(dataset):
        print(f"the reference {checkpoint.name} was trained on {trained_on}, not {_data.full_name(dataset)}: shown without it")
        return None
    return model


def print_evaluations(row: dict) -> None:
    """A train() callback: one printed line per test evaluation (stays in the saved notebook and report)."""
    if math.isfinite(row.get("test_nll_bound", math.nan)):
        print(
            f"step {row['step']:>6}: train loss {row['loss']:.1f}, test NLL bound {row['test_nll_bound']:.2f} nats "
            f"({row['seconds']:.0f} s)",
            flush=True,
        )


def write_json(path, obj) -> Path:
    """Write atomically (a reader never sees half a file; see drawviz.files)."""
    return _files.write_json(path, json_safe(obj))


# ----------------------------------------------------------------------------- train.ipynb


def campaign_figure(checkpoint, name: str):
    """The model's test bound over all legs of its training against epochs and CPU hours
    (plots.plot_campaign), with the published MNIST points when it was trained on binarised MNIST;
    None when its history holds no test bound."""
    from . import campaign, plots
    from .checkpoints import load_checkpoint, settings_of

    state = load_checkpoint(checkpoint)
    curve = campaign.curve(state, name)
    if not len(curve):
        return None
    on_mnist = settings_of(state).get("dataset") == "mnist" and state["config"].likelihood == "bernoulli"
    total = campaign.totals(state)
    return plots.plot_campaign(
        curve,
        campaign.ANCHORS if on_mnist else None,
        title=f"{name}: test bound over {total['legs']} leg{'s' if total['legs'] != 1 else ''} "
        f"of training ({total['epochs']:.1f} epochs, {total['cpu_hours']:.1f} CPU core-hours)",
    )


# ----------------------------------------------------------------------------- blur.ipynb


def _measured_here(run: dict, model, state: dict, path, data_root, *, binarized: bool, seed: int) -> Trained:
    """A model shown without its train.ipynb (a one-shot VAE beside a run): its bound on the run's test split as the
    run's train notebook measured its own, on run["test_images"] of them, class-balanced with the same seed (the same
    images), or all of the split when that is not given; how it was trained from its checkpoint ``state``."""
    from .checkpoints import training_summary
    from .evaluation import evaluate

    about = training_summary(state, path)
    test = load_split(run["dataset"], "test", data_root, run.get("test_images"), seed=seed)
    return Trained(
        **evaluate(model, test, seed=seed, binarize=binarized),
        epochs=about["epochs"],
        cpu_hours=about["cpu_hours"],
        trained=describe_training(about),
        checkpoint=str(path),
    )


def _still_learning(state: dict, behind: float) -> Optional[str]:
    """Whether more training would close a gap of ``behind`` bits/dim at the pace the model last learned: its bound's
    fall per epoch at its last constant rate (drawviz.campaign.slope), and what the gap costs at that pace."""
    from . import campaign

    s = campaign.slope(state)
    if s is None:
        return None
    pace = s["bits_per_dim_per_epoch"]
    rate = f"at its last constant rate ({s['lr']:.2g}) " if s["lr"] is not None else "at the end of its training "
    said = f"{rate}its bound fell {pace:.4f} bits/dim an epoch (epochs {s['from_epoch']:.1f}–{s['to_epoch']:.1f})"
    if pace <= 0:
        return f"{said}: more training at that rate does not close the gap"
    epochs = behind / pace
    total = campaign.totals(state)
    hours = (
        f", about {epochs * total['cpu_hours'] / total['epochs']:,.0f} CPU core-hours at its pace so far"
        if total["epochs"] and total["cpu_hours"]
        else ""
    )
    return f"{said}; at that pace (and it slows) the gap is {epochs:,.0f} epochs away{hours}"


def blur_run(
    run: dict, data_root=None, *, n_samples: int = 64, T: int = 8, steps: int = 300, seed: int = 0, device="auto"
) -> dict:
    """One model of the blur comparison: its images and sharpness measures, and the Markdown saying what they are.

    run: {"name", "dataset", "checkpoint", "metrics" (optional: its train.json)}. Returns {"model", "sets",
    "table", "per_step", "ratios", "source", "bound" (a row of the bounds table), "markdown"}.
    """
    from . import anchors, kinds, likelihood, sharpness
    from .checkpoints import load_checkpoint, model_from_checkpoint
    from .text import markdown_code as code
    from .text import markdown_text

    path = checkpoint_for(run["checkpoint"], run["dataset"], data_root, T=T, steps=steps, seed=seed, device=device)
    state = load_checkpoint(path)  # read once: the model, how it trained, how fast it was still learning
    model = model_from_checkpoint(path, device=device, state=state)
    binarized = binarization(run["dataset"], model.config.likelihood) is not None
    trained = (Trained.read(run["metrics"]) if run.get("metrics") else None) or _measured_here(
        run, model, state, path, data_root, binarized=binarized, seed=seed
    )  # no train.ipynb behind it (a model beside a run, or its notebook failed): measured here
    test_set = load_split(run["dataset"], "test", data_root, limit=n_samples, seed=seed)
    sets, per_step = sharpness.blur_measurements(model, test_set.images, seed=seed)
    table = sharpness.summary(sets)
    bound = {
        "dataset": run["name"],
        "NLL bound, nats": trained.nll_bound,
        "bits/dim": trained.bits_per_dim,
        "test images": trained.images,
        "likelihood": model.config.likelihood + (" (binarised)" if binarized else ""),
        "epochs": trained.epochs,
        "CPU core-hours": trained.cpu_hours,
        "model": trained.trained or Path(run["checkpoint"]).name,
    }
    # 8-bit values under a likelihood of 8-bit values: Gaussians fitted to the same images, scored on the same test set
    same_data = anchors.anchors(run["dataset"], data_root) if not binarized and model.config.likelihood == "logistic" else None
    if same_data is not None:
        bound["full-covariance Gaussian, bits/dim"] = same_data["full_covariance"]
        bound["diagonal Gaussian, bits/dim"] = same_data["diagonal"]
    esc = markdown_text  # names, paths, machine names are user input: shown, never run or rendered as markup
    kind = kinds.of(model)  # DRAW, or a one-shot generator beside it (a convvae: its per-step sharpness is one step)
    who = "DRAW" if kind.name == "draw" else type(model).__name__
    markdown = (
        f"### {esc(run['name'])}\n\n{len(test_set)} test images: {code(test_set.source)}. "
        f"Model: {code(trained.trained or run['checkpoint'])} (T = {model.config.T}"
        + ("" if kind.name == "draw" else f"; {kind.help}")
        + ")."
    )
    if "JPEG" in test_set.source:
        markdown += (
            "\n\n**These CIFAR-10 images are a JPEG re-encoding (quality 75)**, which already smooths "
            "fine detail: the test images' own sharpness is a little lower than the original CIFAR-10's."
        )
    if model.config.channels > 1:
        markdown += f"\n\n**Colour**: {likelihood.describe(model.config.likelihood, False)}."
    if same_data is not None and trained.bits_per_dim is not None:
        behind = trained.bits_per_dim - same_data["full_covariance"]
        standing = (
            f"**{behind:.2f} bits/dim behind the full-covariance Gaussian**: part of this model's blur is what it has "
            f"not learned, not what {who} cannot draw"
            if behind > 0
            else f"{-behind:.2f} bits/dim ahead of the full-covariance Gaussian"
        )
        said = esc(anchors.sentence(trained.bits_per_dim, same_data, who))
        markdown += f"\n\n**Against its own Gaussian** (drawviz.anchors): {said}; {standing}."
        learning = _still_learning(state, behind) if behind > 0 else None
        if learning:
            markdown += f" **Still learning?** {esc(learning)}."
    elif binarized:
        markdown += "\n\nNo Gaussian anchor: the model is measured on binarised images, where a Gaussian is no likelihood."
    return {
        "model": model,
        "sets": sets,
        "table": table.assign(dataset=run["name"]).reset_index().set_index(["dataset", "images"]),
        "per_step": per_step.assign(source=run["name"] + ": " + per_step["source"]),
        "ratios": sharpness.ratios(table),
        "source": test_set.source,
        "bound": bound,
        "markdown": markdown,
    }
