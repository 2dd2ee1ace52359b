"""The training loop for notebooks and the CLI: Adam, gradient-norm clipping, a periodic test-set NLL
bound, atomic checkpoints that resume exactly, legs recorded across sessions, and a history DataFrame.
It reports through ``callbacks`` (called with each history row); ``progress`` picks a tqdm.auto bar or
silence. Checkpoints (drawviz.checkpoints), the recipe and settings (drawviz.recipe), evaluation
(drawviz.evaluation) and the device (drawviz.device) have modules of their own: import their names from there.
"""

from __future__ import annotations

import functools
import json
import math
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

import pandas as pd
import torch

from . import data as _data
from . import distributed as _distributed
from . import files as _files
from . import kinds as _kinds
from .campaign import legs_of
from .checkpoints import (
    CheckpointError,
    _load_weights,
    check_writable,
    load_checkpoint,
    save_checkpoint,
    settings_of,
)
from .device import describe_hardware, pick_device
from .evaluation import TrainingDiverged, _as_images, _as_labels, evaluate, labels_from
from .model import DRAW, DrawConfig, check_images
from .recipe import Recipe, TrainConfig

__all__ = ["train", "TrainResult", "HISTORY"]


def _after_divergence(checkpoint, rate: float, clip: float) -> str:
    """What to do after a divergence, naming a checkpoint only where one exists."""
    advice = f"a lower learning rate (now {rate:.3g}, --lr) or a smaller clip (now {clip:g}, --clip)"
    if checkpoint is not None and Path(checkpoint).exists():
        step = load_checkpoint(checkpoint)["step"]
        return f"The last good checkpoint, {checkpoint} (step {step:,}), is kept: resume from it with {advice}."
    return f"No checkpoint was written before it; train again with {advice}."


def _on_stop_signals(callback) -> Callable[[], None]:
    """Call ``callback`` on SIGTERM or SIGINT (Ctrl-C, a notebook's interrupt) while training (main
    thread only), so the loop can finish the step in hand and save once; returns the undo.

    A second Ctrl-C is the user insisting: it raises KeyboardInterrupt at once (nothing is saved
    then, so no half-applied step is ever written; the last checkpoint stays).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    pressed = []

    def on_sigint(signum, frame):
        if pressed:
            raise KeyboardInterrupt("interrupted twice: stopped at once; the last checkpoint is kept")
        pressed.append(True)
        callback()

    signal.signal(signal.SIGTERM, lambda signum, frame: callback())
    signal.signal(signal.SIGINT, on_sigint)
    return lambda: [signal.signal(sig, handler) for sig, handler in previous.items()]


class _Stop(Exception):
    """A stop signal arrived: the loop finished its step; save and stop."""


class _Stopping:
    """A run's one stop flag. A signal asks (SIGTERM, the first Ctrl-C); with several processes the ranks
    agree after each step, so that all stop after the same one. in_step: a step is half done (its weights,
    RNG and step count disagree), so nothing may be saved until it ends."""

    def __init__(self, world: int):
        self.world, self.asked, self.agreed, self.in_step = world, False, False, False

    def ask(self) -> None:
        self.asked = True

    @property
    def now(self) -> bool:
        return self.asked if self.world == 1 else self.agreed


@dataclass
class TrainResult:
    model: DRAW
    history: pd.DataFrame  # one row per step; test_nll_bound where evaluated
    checkpoint: Optional[Path]
    step: int

    @property
    def final_nll_bound(self) -> float:
        evaluated = self.history["test_nll_bound"].dropna()
        return float(evaluated.iloc[-1]) if len(evaluated) else math.nan


def _say_what_changed(checkpoint, before: dict, settings: TrainConfig, start: int) -> None:
    """Settings that differ from the checkpoint's apply from the resumed step: warn which (the seed, the data,
    the recipe), at the caller of train()."""
    for key, now in (("seed", settings.seed), ("dataset", settings.dataset)):
        if before.get(key) is not None and now is not None and before[key] != now:
            warnings.warn(
                f"resuming {checkpoint} with {key} {now!r} (it was trained with {before[key]!r}); "
                f"applied from step {start}"
                + (": the data order changes from here" if key == "seed" else ": the model now trains on other data"),
                stacklevel=5,  # the caller of train(): train, _train, _resume, here
            )
    if "binarize" in before and before["binarize"] != settings.binarize:  # None is a setting here: no binarisation
        warnings.warn(
            f"resuming {checkpoint} with binarize {settings.binarize!r} (it was trained with {before['binarize']!r}); "
            f"applied from step {start}: the model now sees its images "
            + ("as grey values" if settings.binarize is None else f"binarised ({settings.binarize})"),
            stacklevel=5,  # the caller of train(): train, _train, _resume, here
        )
    if before.get("fresh_scenes", False) != settings.fresh_scenes and before:
        warnings.warn(
            f"resuming {checkpoint} with fresh_scenes {settings.fresh_scenes} (it was trained with "
            f"{before.get('fresh_scenes', False)}); applied from step {start}: each epoch now shows "
            + ("its digits in new places" if settings.fresh_scenes else "the same scenes"),
            stacklevel=5,  # the caller of train(): train, _train, _resume, here
        )
    saved, recipe = before.get("recipe"), settings.recipe.to_dict()
    if saved is not None and saved != recipe:
        changed = {k: (v, recipe[k]) for k, v in saved.items() if recipe.get(k) != v}
        warnings.warn(
            f"resuming {checkpoint} with another recipe; applied from step {start}: "
            + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items()),
            stacklevel=5,  # the caller of train(): train, _train, _resume, here
        )


def _leg_factor(recipe: Recipe, into_leg: int, seconds_left: float, rewarm: int, cooldown: float) -> float:
    """What a leg does to the recipe's rate: a warm-up of a fresh Adam over its first ``rewarm`` steps, and a
    linear fall to recipe.final over the last ``cooldown`` seconds of the time budget."""
    factor = min(1.0, (into_leg + 1) / rewarm) if rewarm else 1.0
    if cooldown:
        factor *= recipe.final + (1 - recipe.final) * min(max(seconds_left / cooldown, 0.0), 1.0)
    return factor


def train(
    model_or_config: DRAW | DrawConfig,
    train_images,
    test_images=None,
    settings: Optional[TrainConfig] = None,
    *,
    device="auto",
    checkpoint=None,
    resume: bool = True,
    progress: bool = True,
    callbacks: Iterable[Callable[[dict], None]] = (),
    train_args: Optional[dict] = None,
    **changes,
) -> TrainResult:
    """Train DRAW with Adam as ``settings`` (a :class:`TrainConfig`) says, changed by ``changes``: any
    TrainConfig field (steps, minutes, recipe, seed, binarize, eval_every, fast, bf16, ...) or recipe
    field (lr, batch_size, clip, ...), e.g. ``train(config, images, steps=2000, recipe="anneal")``.

    checkpoint: a path; written every ``checkpoint_every`` steps, at the end, and on Ctrl-C.
      With ``resume`` and an existing file, training continues from it exactly (settings that differ
      from the checkpoint's are applied from the resumed step, with a warning).
    Test NLL bounds (statically binarised when binarize is set) every ``eval_every`` steps or
    ``eval_every_minutes``, and at the end when test images are given.
    fast: train through :func:`drawviz.fast.make_fast` (same numbers, same parameters and
      checkpoints; fused GEMMs and a hand-written backward pass).
    bf16: the fast path with its GEMMs in bfloat16 (implies fast; fp32 parameters and states; faster
      only where the hardware multiplies bfloat16 natively: measure with benchmarks/bench.py; loss
      within ~0.1%).
    train_args: provenance to record (dataset, data_root, limit, test_limit), as the notebooks give it.
    """
    run = functools.partial(
        _train,
        model_or_config,
        train_images,
        test_images,
        settings,
        device=device,
        resume=resume,
        progress=progress,
        callbacks=callbacks,
        train_args=train_args,
        **changes,
    )
    if checkpoint is None or not _distributed.current().main:
        return run(checkpoint=checkpoint)
    checkpoint = check_writable(checkpoint)  # before the lock beside it is made
    try:
        lock = _files.exclusive(checkpoint, "training")
        lock.__enter__()
    except _files.InUse as err:  # two runs on one file would resume and overwrite each other's steps
        raise CheckpointError(str(err)) from None
    try:
        return run(checkpoint=checkpoint)
    finally:
        lock.__exit__(None, None, None)


def _model(model_or_config, settings: TrainConfig, dev, ranks):
    """The model to train, on ``dev``: as given, or made from a config (of any kind, drawviz.kinds) with the
    run's seed (so that train(config, seed=s) is reproducible end to end); every rank must be making the same one."""
    if isinstance(model_or_config, torch.nn.Module):
        model = model_or_config
        _kinds.of(model)  # an unregistered class could not be saved and read back: refuse it now
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            model = _kinds.build(model_or_config)
    model.to(dev).train()
    if ranks.world > 1:  # a rank started with another --seed or --T would train its own model: refuse at once
        agreed = json.dumps({"config": model.config.to_dict(), "settings": settings.to_dict()}, sort_keys=True, default=str)
        if not ranks.same(agreed):
            raise ValueError(
                f"the {ranks.world} training processes were started with different settings or configs "
                f"(e.g. --seed, --T, --lr); start every rank with the same command"
            )
    return model


def _images(train_images, test_images, model, settings: TrainConfig, dev):
    """The training images on ``dev`` (binarised once if static) and the test images, both checked, and, for a
    kind that learns from labels, the training labels on ``dev``."""
    train_y = None
    if _kinds.of(model).labels:
        field = labels_from(model)
        train_y = _as_labels(train_images, None, field)
        if train_y is None or _as_labels(test_images, None, field) is None and test_images is not None:
            what = "labels" if field == "labels" else f"labels (an ImageSet's {field})"
            raise ValueError(
                f"a {_kinds.of(model).name} model learns from {what}: give ImageSets (data.load) that have them, not bare tensors"
            )
        train_y = train_y.to(dev)
    train_x = _as_images(train_images)
    check_images(train_x, model.config)
    test_x = _as_images(test_images) if test_images is not None else None
    if test_x is not None:
        check_images(test_x, model.config)
    if train_x.shape[0] < settings.recipe.batch_size:
        raise ValueError(f"batch_size {settings.recipe.batch_size} is larger than the training set ({train_x.shape[0]} images)")
    if settings.binarize == "static":
        train_x = _data.binarize(train_x, seed=settings.seed)
    test = test_images if train_y is not None else test_x  # a labelled kind is evaluated on the ImageSet, labels and all
    return train_x.to(dev), train_y, test


def _redraw(train_images, first, settings: TrainConfig, dev):
    """For ``fresh_scenes``: epoch -> (images, labels) on ``dev``: the set as given for epoch 0, then the same
    digits redrawn with a seed made of the scene's, the run's and the epoch (the same on every machine and rank)."""
    if getattr(train_images, "pieces", None) is None:
        raise ValueError(
            "fresh_scenes draws a scene set's digits in new places each epoch: train on a scene set loaded with "
            "data.load (cluttered-mnist, two-digit-mnist, or their samples), or leave it off"
        )

    def redraw(epoch: int):
        if epoch == 0:
            return first
        fresh = train_images.redrawn([train_images.pieces.scene.seed, settings.seed, epoch])
        x = _as_images(fresh)
        if settings.binarize == "static":
            x = _data.binarize(x, seed=settings.seed)
        y = fresh.labels.to(dev) if first[1] is not None else None
        return x.to(dev), y

    return redraw


def _pass(model: DRAW, settings: TrainConfig, ranks, dev):
    """What runs the forward and backward pass: the model, its fast path, or either over several processes.
    Each shares the model's parameters, so the optimiser and the checkpoints see no difference."""
    net = model
    if settings.fast or settings.bf16:
        from .fast import make_fast  # refuses every model it does not implement

        net = make_fast(model, bf16=settings.bf16)
    if ranks.world > 1:  # gradients averaged over the ranks in backward: every rank applies the same step
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)
    return net


def _resume(checkpoint: Path, model, optimizer, generator, settings: TrainConfig, args: dict, dev):
    """Weights, optimiser, RNG, history and legs from ``checkpoint``: (start step, history, legs, fresh Adam,
    settings). A resume that does not name its data keeps the checkpoint's."""
    state = load_checkpoint(checkpoint, map_location=dev)
    _load_weights(model, state, checkpoint)
    fresh_adam = state["optimizer"] is None
    if not fresh_adam:
        optimizer.load_state_dict(state["optimizer"])
        for group in optimizer.param_groups:  # the recipe in hand sets the betas, not the saved one
            group["betas"], group["eps"] = (settings.recipe.beta1, settings.recipe.beta2), settings.recipe.adam_eps
    if state["rng"] is not None and state["rng_device"] == str(generator.device):
        generator.set_state(state["rng"].cpu())
    start = state["step"]
    before, recorded = settings_of(state), state.get("train_args", {})
    _say_what_changed(checkpoint, before, settings, start)
    if settings.dataset is None and before.get("dataset") is not None:
        settings = settings.replace(dataset=before["dataset"])
        args["settings"] = settings.to_dict()
    if args.get("train_source") is None and recorded.get("train_source") is not None:
        args["train_source"] = recorded["train_source"]
    return start, list(state["history"]), legs_of(state), fresh_adam, settings


def _progress_bar(steps, minutes, start: int, seconds: float):
    """A tqdm bar over the steps, or over the seconds of a time budget."""
    from tqdm.auto import tqdm

    if minutes is None:
        return tqdm(total=steps, initial=start, desc="train DRAW", unit="step", dynamic_ncols=True)
    bar = tqdm(
        total=round(minutes * 60),
        desc=f"train DRAW ({minutes:g} min)",
        unit="s",
        dynamic_ncols=True,
        bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]",
    )
    bar.update(min(seconds, minutes * 60))
    return bar


def _step(net, model, optimizer, x, y, eps, clip: float, ranks, *, step: int, rate: float, checkpoint):
    """Forward (eq. 3-12), backward and one clipped Adam step: (loss, L^x, L^z, gradient norm), means over the
    ranks. Refuses a non-finite loss or gradient before it reaches the weights. y: the labels, for a kind that
    learns from them (its L^x is then −log p(y | x))."""
    out = net(x, eps, check=False) if y is None else net(x, eps, labels=y, check=False)
    # one device sync for the three figures the history keeps
    loss, nll, kl = ranks.mean(torch.stack([out.loss, out.nll.mean(), out.kl.sum(0).mean()]).detach()).tolist()
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"loss became {loss} at step {step + 1}; stopped without saving this state. "
            + _after_divergence(checkpoint, rate, clip)
        )
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip).item()
    if not math.isfinite(grad_norm):
        raise TrainingDiverged(
            f"gradient norm became {grad_norm} at step {step + 1}; stopped before applying it. "
            + _after_divergence(checkpoint, rate, clip)
        )
    optimizer.step()
    return loss, nll, kl, grad_norm


HISTORY = ["step", "epoch", "loss", "nll", "kl", "grad_norm", "lr", "seconds", "images_per_s", "test_nll_bound"]
# beside test_nll_bound, what a kind's evaluation adds to the history (the classifier's test error)
TESTED = {"error": "test_error"}


def _train(
    model_or_config,
    train_images,
    test_images,
    settings,
    *,
    device,
    checkpoint,
    resume,
    progress,
    callbacks,
    train_args,
    **changes,
) -> TrainResult:
    # ---- 1. the settings, the processes, the device, the model and the images
    provenance = {k: v for k, v in (train_args or {}).items() if k in ("dataset", "data_root", "limit", "test_limit")}
    settings = (settings or TrainConfig()).replace(**provenance, **changes)
    ranks = _distributed.current()  # under torchrun: this process's share of every global batch
    dev = pick_device(device)
    model = _model(model_or_config, settings, dev, ranks)
    train_x, train_y, test_x = _images(train_images, test_images, model, settings, dev)
    redraw = _redraw(train_images, (train_x, train_y), settings, dev) if settings.fresh_scenes else None

    # ---- 2. what runs the pass, the optimiser and the randomness
    net = _pass(model, settings, ranks, dev)
    recipe = settings.recipe
    optimizer = torch.optim.Adam(
        model.parameters(), lr=recipe.rate(0, 0.0), betas=(recipe.beta1, recipe.beta2), eps=recipe.adam_eps
    )
    generator = torch.Generator(dev).manual_seed(settings.seed)

    # ---- 3. what the checkpoint says of the training (the settings once; load_checkpoint also shows them as
    # the flat keys older checkpoints have), and resuming from it
    if checkpoint is not None:  # only rank 0 writes
        checkpoint = check_writable(checkpoint) if ranks.main else Path(checkpoint)
    args = {
        "settings": settings.to_dict(),
        "hardware": describe_hardware(dev),
        "processes": ranks.world,
        "train_images": int(train_x.shape[0]),
        "train_source": _data.portable(getattr(train_images, "source", None)),
        **{k: v for k, v in (train_args or {}).items() if k not in provenance},
    }
    start, history, legs, fresh_adam = 0, [], [], True
    if checkpoint is not None and resume and checkpoint.exists():
        start, history, legs, fresh_adam, settings = _resume(checkpoint, model, optimizer, generator, settings, args, dev)
    steps, minutes, batch_size, seed = settings.steps, settings.minutes, recipe.batch_size, settings.seed

    # ---- 4. this leg: its clock, its epochs, its record, its schedule
    budget = minutes * 60 if minutes is not None else math.inf
    per_epoch = train_x.shape[0] // batch_size
    seconds = history[-1]["seconds"] if history else 0.0  # the clock counts training only
    # epochs add up over legs of any batch size: this leg's steps count in its own batches
    offset = (history[-1]["epoch"] - start / per_epoch) if history and start else 0.0
    offset = 0.0 if abs(offset) < 1e-9 else offset
    hardware = args["hardware"]
    leg = {
        "start_step": start,
        "end_step": start,
        "start_epoch": start / per_epoch + offset,
        "end_epoch": start / per_epoch + offset,
        "start_seconds": seconds,
        "end_seconds": seconds,
        "recipe": recipe.to_dict(),
        "batch_size": batch_size,
        "device": hardware["device"],
        "machine": hardware["name"],
        "isa": hardware.get("isa"),  # "AMD EPYC" is AVX2 on one machine and AVX-512 on the next: speeds differ
        "threads": hardware.get("threads"),
        "processes": ranks.world,
        "fresh_optimizer": fresh_adam,
        "cooldown_minutes": settings.cooldown_minutes,
        "fresh_scenes": settings.fresh_scenes,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    rewarm = settings.rewarm if fresh_adam and start > 0 else 0
    cooldown = settings.cooldown_minutes * 60 if settings.cooldown_minutes else 0.0
    every_minutes = settings.eval_every_minutes
    next_eval = (math.floor(seconds / (every_minutes * 60)) + 1) * every_minutes * 60 if every_minutes else math.inf
    shard = ranks.shard(batch_size) if ranks.world > 1 else None

    def save(step):
        if history and history[-1]["step"] == step > start:  # this leg added steps: record it
            leg.update(end_step=step, end_epoch=history[-1]["epoch"], end_seconds=history[-1]["seconds"])
            args["legs"] = legs + [leg]
        else:
            args["legs"] = legs
        if checkpoint is not None and ranks.main:
            save_checkpoint(
                checkpoint, model=model, optimizer=optimizer, step=step, generator=generator, history=history, train_args=args
            )

    # ---- 5. the steps, until the step or time budget is spent or a signal asks to stop
    bar = _progress_bar(steps, minutes, start, seconds) if progress and ranks.main else None
    order_epoch, order = None, None
    step = start
    stop = _Stopping(ranks.world)
    restore = _on_stop_signals(stop.ask)
    try:
        while (steps is None or step < steps) and seconds < budget:
            if stop.now:  # Ctrl-C or SIGTERM: the step in hand is finished; the RNG is at `step` exactly
                raise _Stop()
            stop.in_step = True
            # the batch, its randomness and the rate
            epoch, pos = divmod(step, per_epoch)
            if epoch != order_epoch:
                if redraw is not None:  # a function of the epoch alone: resuming mid-epoch sees the same scenes
                    train_x, train_y = redraw(epoch)
                order_epoch, order = epoch, _data.batches(train_x, batch_size, seed=seed, epoch=epoch)
            tick = time.perf_counter()
            rate = recipe.rate(step, seconds / budget if minutes is not None else step / max(steps, 1))
            rate *= _leg_factor(recipe, step - start, budget - seconds, rewarm, cooldown)
            for group in optimizer.param_groups:
                group["lr"] = rate
            x = train_x[order[pos].to(dev)]
            y = train_y[order[pos].to(dev)] if train_y is not None else None
            if settings.binarize == "dynamic":
                x = _data.binarize(x, generator=generator)
            eps = model.sample_eps(batch_size, generator)
            if shard is not None:  # the whole batch's randomness is drawn on every rank: each keeps its rows
                x, eps = x[shard], eps[:, shard]
                y = y[shard] if y is not None else None
            loss, nll, kl, grad_norm = _step(
                net, model, optimizer, x, y, eps, recipe.clip, ranks, step=step, rate=rate, checkpoint=checkpoint
            )
            step += 1
            took = time.perf_counter() - tick
            seconds += took
            if ranks.world > 1:  # the slowest rank's clock, so all stop at the same step
                seconds, stop.agreed = ranks.agree(seconds, stop.asked)
            # the record of the step: its row, a test bound when due, a checkpoint when due, the callbacks
            row = dict(
                zip(
                    HISTORY,
                    (
                        step,
                        step / per_epoch + offset,
                        loss,
                        nll,
                        kl,
                        grad_norm,
                        rate,
                        seconds,
                        batch_size / max(took, 1e-9),
                        math.nan,
                    ),
                )
            )
            last = step == steps or seconds >= budget
            if test_x is not None and ((settings.eval_every and step % settings.eval_every == 0) or seconds >= next_eval or last):
                if ranks.main:  # the others go on to the next step and wait for rank 0 there (evaluate restores train mode)
                    tested = evaluate(
                        model, test_x, batch_size=settings.eval_batch_size, seed=seed, binarize=settings.binarize is not None
                    )
                    row["test_nll_bound"] = tested["nll_bound"]
                    row.update({column: tested[name] for name, column in TESTED.items() if name in tested})
                while next_eval <= seconds:
                    next_eval += every_minutes * 60
            history.append(row)
            stop.in_step = False
            if settings.checkpoint_every and step % settings.checkpoint_every == 0 and not last:
                save(step)
            if bar is not None:
                bar.update(1 if minutes is None else min(took, max(budget - bar.n, 0)))
                tested = {"test": f"{row['test_nll_bound']:.2f}"} if math.isfinite(row["test_nll_bound"]) else {}
                bar.set_postfix(loss=f"{loss:.2f}", **tested)
            for callback in callbacks if ranks.main else ():
                callback(row)
        # ---- 6. the end: the last checkpoint, and the history as a DataFrame
        if stop.now or stop.asked:  # a signal during the last step
            raise _Stop()
        save(step)
    except _Stop:
        save(step)  # nothing lost on Ctrl-C: every completed step is on disk, and no partial one
        raise KeyboardInterrupt(f"stopped after step {step} (checkpoint {checkpoint or 'not configured'})") from None
    except KeyboardInterrupt:  # raised by other code (a callback, a second Ctrl-C): save only between steps
        if not stop.in_step:
            save(step)
        raise
    finally:
        restore()
        if bar is not None:
            bar.close()
    extra = [column for column in TESTED.values() if any(column in row for row in history)]
    return TrainResult(model.eval(), pd.DataFrame(history, columns=HISTORY + extra), checkpoint, step)
