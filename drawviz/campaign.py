"""Training across sessions: a model's legs, their totals, its bound curve over all of them, and the
published points to hold it against.

A leg is one ``train`` call that added steps to a checkpoint (resumed from a full checkpoint or from a
shipped weights file). ``train`` records each leg in the checkpoint's ``train_args["legs"]``; here
they are read back (older checkpoints get one leg made from their history), totalled, and turned into
a tidy curve a seaborn call or :func:`drawviz.plots.plot_campaign` can draw.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pandas as pd

__all__ = ["legs_of", "runs_of", "totals", "curve", "slope", "FLAT", "ANCHORS"]

# Published MNIST test bounds (nats) to draw beside a campaign's curve. epoch None: a final figure
# reported without its epoch count (drawn as a level, not a point).
ANCHORS = pd.DataFrame(
    [
        {"source": "jbornschein/draw (user report)", "attention": True, "epoch": 100.0, "test_nll_bound": 90.5},
        {"source": "jbornschein/draw", "attention": True, "epoch": 300.0, "test_nll_bound": 81.9},
        {"source": "paper, DRAW with attention", "attention": True, "epoch": None, "test_nll_bound": 80.97},
        {"source": "paper, DRAW without attention", "attention": False, "epoch": None, "test_nll_bound": 87.40},
    ]
)

# When a campaign's curve counts as flattened (issue 19): the bound falls by less than this per epoch over the
# last FLAT_EPOCHS epochs of training, in the dataset's own unit.
# two-digit-mnist: twice MNIST's rule, for two digits' worth of ink (its bound is about twice a digit's)
FLAT = {"mnist": (0.3, "nats"), "cifar10": (0.01, "bits/dim"), "two-digit-mnist": (0.6, "nats")}
FLAT_EPOCHS = 5.0


def legs_of(state: dict) -> list[dict]:
    """The legs a checkpoint's training ran in, oldest first: start and end step, epoch and training
    seconds, recipe, batch, device, machine (and its instruction set), threads, processes, and whether Adam started fresh.

    Checkpoints written before legs were recorded get one leg made from their history and settings
    (``"reconstructed": True``).
    """
    args, history = state.get("train_args") or {}, state.get("history") or []
    if args.get("legs"):
        return [dict(leg) for leg in args["legs"]]
    if not history or not state.get("step"):
        return []
    hardware, last = args.get("hardware") or {}, history[-1]
    recipe = (args.get("settings") or {}).get("recipe") or {}
    return [
        {
            "start_step": 0,
            "end_step": int(state["step"]),
            "start_epoch": 0.0,
            "end_epoch": last.get("epoch"),
            "start_seconds": 0.0,
            "end_seconds": last.get("seconds"),
            "recipe": recipe or None,
            "batch_size": recipe.get("batch_size"),
            "device": hardware.get("device", "cpu"),
            "machine": hardware.get("name"),
            "isa": hardware.get("isa"),
            "threads": hardware.get("threads"),
            "processes": args.get("processes", 1),
            "fresh_optimizer": True,
            "started": None,
            "reconstructed": True,
        }
    ]


def runs_of(state: dict) -> list[list[dict]]:
    """The legs grouped into runs, oldest first: a leg that resumed the optimiser state of the one before
    (a run stopped, by SIGTERM or a budget change, and restarted from its full checkpoint) continues that
    run; a leg that started a fresh Adam (from shipped weights, or from scratch) starts a new one."""
    runs: list[list[dict]] = []
    for leg in legs_of(state):
        if runs and not leg.get("fresh_optimizer"):
            runs[-1].append(leg)
        else:
            runs.append([leg])
    return runs


def _cores(leg: dict) -> float:
    """CPU cores a leg kept busy (threads × processes); 0 for a GPU leg."""
    return 0.0 if leg.get("device") == "cuda" else float((leg.get("threads") or 1) * (leg.get("processes") or 1))


def totals(state: dict) -> dict:
    """{"legs", "steps", "epochs", "hours", "cpu_hours", "gpu_hours"} over a checkpoint's legs.

    hours: training time (evaluations and checkpoint writes not counted); cpu_hours: that time times the
    cores each leg used (core-hours); gpu_hours: the training time of legs on a GPU.
    """
    legs = legs_of(state)
    hours = cpu = gpu = 0.0
    for leg in legs:
        h = ((leg.get("end_seconds") or 0.0) - (leg.get("start_seconds") or 0.0)) / 3600
        hours += h
        cpu += h * _cores(leg)
        gpu += h if leg.get("device") == "cuda" else 0.0
    last = legs[-1] if legs else {}
    return {
        "legs": len(legs),
        "steps": int(last.get("end_step") or 0),
        "epochs": float(last.get("end_epoch") or 0.0),
        "hours": hours,
        "cpu_hours": cpu,
        "gpu_hours": gpu,
    }


def curve(state: dict, model: Optional[str] = None) -> pd.DataFrame:
    """The test bounds in a checkpoint's history, one row each: model, leg, step, epoch, hours,
    cpu_hours, lr (the rate of that step: a bound read at an annealed rate is not one read at the peak),
    peak_lr_since (the highest rate since the evaluation before), test_nll_bound (tidy: concatenate several
    models' curves and plot them together)."""
    legs = legs_of(state)
    history = state.get("history") or []
    rows, cpu_before = [], 0.0
    for i, leg in enumerate(legs):
        for row in history:
            bound = row.get("test_nll_bound")
            if not (leg["start_step"] < row["step"] <= leg["end_step"]) or bound is None or not math.isfinite(bound):
                continue
            into = (row["seconds"] - (leg.get("start_seconds") or 0.0)) / 3600
            rows.append(
                {
                    "model": model,
                    "leg": i + 1,
                    "step": row["step"],
                    "epoch": row["epoch"],
                    "hours": row["seconds"] / 3600,
                    "cpu_hours": cpu_before + into * _cores(leg),
                    "lr": row.get("lr", math.nan),
                    "test_nll_bound": bound,
                }
            )
        cpu_before += ((leg.get("end_seconds") or 0.0) - (leg.get("start_seconds") or 0.0)) / 3600 * _cores(leg)
    rates = sorted((r["step"], r["lr"]) for r in history if r.get("lr") is not None and math.isfinite(r["lr"]))
    rates, i = [(step, lr) for step, lr in rates if step > 0], 0
    for row in sorted(rows, key=lambda r: r["step"]):  # the highest rate since the evaluation before, in one pass:
        peak = math.nan  # a re-warmed leg between two cooldown ends shows here
        while i < len(rates) and rates[i][0] <= row["step"]:
            peak = rates[i][1] if math.isnan(peak) else max(peak, rates[i][1])
            i += 1
        row["peak_lr_since"] = peak
    columns = ["model", "leg", "step", "epoch", "hours", "cpu_hours", "lr", "peak_lr_since", "test_nll_bound"]
    return pd.DataFrame(rows, columns=columns)


ANNEALED = 0.1  # a rate at 10 % of its peak or less: the end of a cooldown or of a cosine anneal


def _peak(curves: pd.DataFrame) -> pd.Series:
    """Each row's model's peak rate (:func:`curve` rows): the highest rate read at an evaluation or passed
    between two, so a leg evaluated only at its cooldown's end still has its peak."""
    rates = curves[[c for c in ("lr", "peak_lr_since") if c in curves]].max(axis=1)
    return rates.groupby(curves["model"], dropna=False).transform("max")


def anneal_ends(curves: pd.DataFrame, annealed: float = ANNEALED) -> pd.DataFrame:
    """The rows of ``curves`` (:func:`curve` rows, one model or several) where an anneal ended: the last of
    each stretch of evaluations read at ``annealed`` × the model's peak rate or less. A constant-rate leg's
    bounds sit above those of its cooldown, so these are the points at which models compare."""
    curves = curves.reset_index(drop=True)
    threshold = annealed * _peak(curves)
    low = curves["lr"] <= threshold
    # a run of low rates ends where the rate rose above the threshold, also between two evaluations
    rose = curves["peak_lr_since"] > threshold if "peak_lr_since" in curves else pd.Series(False, index=curves.index)
    stretch = (~low | rose).groupby(curves["model"], dropna=False).cumsum()  # one number per run of low rates
    return curves[low].groupby([curves["model"], stretch], sort=False, dropna=False).tail(1)


def _constant_stretch(c: pd.DataFrame, within: float = 0.1) -> Optional[pd.DataFrame]:
    """The last run of two or more consecutive evaluations read at one rate (within ``within`` of each other)
    above an annealed rate, None where there is none (a cosine anneal, or a history without rates)."""
    lr = c["lr"].to_numpy(float)
    # two cooldowns that each ended at the same low rate are two anneal ends, not a constant stretch
    lr = np.where(lr > ANNEALED * _peak(c).to_numpy(float), lr, np.nan)
    end = len(c)
    while end >= 2:
        start = end - 1
        while start > 0 and math.isfinite(lr[start - 1]) and abs(lr[start - 1] / lr[end - 1] - 1) <= within:
            start -= 1
        if math.isfinite(lr[end - 1]) and end - start >= 2:
            return c.iloc[start:end]
        end = start
    return None


def slope(state: dict, epochs: float = FLAT_EPOCHS) -> Optional[dict]:
    """How fast the test bound fell over the last ``epochs`` epochs at the last constant rate: a least-squares
    line through the evaluations there (all of that stretch when it was shorter). A cooldown's evaluations after
    the stretch are left out: they measure the anneal, not whether training at the rate still pays; where the
    rate was never constant over two evaluations (a cosine anneal), the last evaluations, whatever their rate.
    {"from_epoch", "to_epoch", "evaluations", "nats_per_epoch", "bits_per_dim_per_epoch", "flat", "lr" (the
    stretch's rate, None without one), "after" (evaluations after the stretch)}: flat is True or False against
    :data:`FLAT` for the checkpoint's dataset, None where no rule is declared or the stretch spans fewer than
    ``epochs`` epochs ("span_epochs": too short to judge). None with fewer than two evaluations."""
    c = curve(state)
    if len(c) < 2:
        return None
    stretch = _constant_stretch(c)
    pool = stretch if stretch is not None else c
    last = pool[pool["epoch"] >= pool["epoch"].iloc[-1] - epochs]
    if len(last) < 2:
        last = pool.iloc[-2:]
    x, y = last["epoch"].to_numpy(float), last["test_nll_bound"].to_numpy(float)
    xm = x.mean()
    per_epoch = -float(((x - xm) * (y - y.mean())).sum() / max(((x - xm) ** 2).sum(), 1e-12))  # falling: > 0
    config = state["config"]
    bits = per_epoch / (config.channels * config.height * config.width * math.log(2))
    rule = FLAT.get(((state.get("train_args") or {}).get("settings") or {}).get("dataset"))
    span = float(pool["epoch"].iloc[-1] - pool["epoch"].iloc[0])  # the rule needs `epochs` of it to judge
    judged = rule is not None and span >= epochs - 1e-9
    flat = (per_epoch if rule[1] == "nats" else bits) < rule[0] if judged else None
    return {
        "from_epoch": float(x[0]),
        "to_epoch": float(x[-1]),
        "evaluations": len(x),
        "nats_per_epoch": per_epoch,
        "bits_per_dim_per_epoch": bits,
        "flat": flat,
        "span_epochs": span,
        "lr": float(stretch["lr"].median()) if stretch is not None else None,
        "after": int(len(c) - (c.index.get_loc(stretch.index[-1]) + 1)) if stretch is not None else 0,
    }
