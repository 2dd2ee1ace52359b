"""Model cards: what a shipped checkpoint is, how it was trained, and how it behaves, measured.

``python -m drawviz card CKPT`` (or :func:`model_card`) reads the checkpoint's config, recipe and
history, evaluates the test NLL bound on the whole test set exactly as ``python -m drawviz evaluate``
does, and measures the attention diagnostics (:mod:`drawviz.diagnostics`) on the first ``images``
statically binarised test images, with a reference model's edit area beside them.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Optional


from . import anchors as _anchors
from . import campaign
from . import data as _data
from . import diagnostics, probes
from . import kinds as _kinds
from . import order
from .likelihood import describe
from .text import markdown_code as _code
from .text import markdown_text as _md
from .checkpoints import load_checkpoint, model_from_checkpoint, settings_of
from .evaluation import evaluate

__all__ = ["model_card", "measure", "into_page", "into_file"]


def _cell(value) -> str:
    """A code span inside a table row: a "|" in it escaped, or GitHub and nbconvert end the cell there
    (``--command-line "… | tee log"``)."""
    return _code(value).replace("|", "\\|")


def measure(checkpoint, *, data_root=None, reference=None, images: int = 256, seed: int = 0, progress: bool = False) -> dict:
    """The numbers of a card: {"state", "bound" (evaluate's dict), "diagnostics" (summary table), "test"}."""
    state = load_checkpoint(checkpoint)
    settings = settings_of(state)
    dataset = settings.get("dataset") or "mnist"
    test = _data.load(dataset, "test", data_root)
    model = model_from_checkpoint(checkpoint, device="cpu", state=state)
    if not _kinds.of(model).generator:
        return _measure_classifier(model, state, test, images=images, seed=seed, progress=progress)
    binarize = _data.binarised_as_trained(settings, model.config.likelihood)
    bound = evaluate(model, test, seed=seed, binarize=binarize, progress=progress)
    x = test.balanced(images, seed=seed).images
    x = _data.binarize(x, seed=seed) if binarize else x
    reference_area = reference_label = None
    if reference is not None:
        other = model_from_checkpoint(reference, device="cpu")
        reference_area = diagnostics.reference_edit_area(other, x, seed=seed)
        reference_label = _what_model(other.config, Path(reference).name)
    told = _told(model, test.balanced(images, seed=seed))  # a conditional model is told each image's own condition
    table = diagnostics.summary(probes.run(model, x, seed=seed, **told), reference=reference_area)
    # on binary digits, what the centre spread is for pens that need no model (diagnostics.spread_references)
    steps = model.config.T - int(math.floor(0.1 * model.config.T))  # summary's steps after the first 10 %
    pens = diagnostics.spread_references(x, steps=steps, seed=seed) if binarize and model.config.attention else None
    # how large the subject is, to read a footprint against (a digit's box or a garment's; not for natural images)
    ink = diagnostics.ink_extent(x) if model.config.attention and model.config.channels == 1 else None
    drawing_order = _drawing_order(model, test.balanced(images, seed=seed), x, seed) if order.two_digits(test) else None
    # 8-bit data under a likelihood of 8-bit values: the Gaussians fitted to the same images say what a bound is worth
    same_data = _anchors.anchors(dataset, data_root) if not binarize and model.config.likelihood == "logistic" else None
    drawn_as_asked = _asked(model, dataset, test, images, seed, binarize, progress) if told else None
    return {
        "state": state,
        "bound": bound,
        "asked": drawn_as_asked,
        "anchors": same_data,
        "drawing_order": drawing_order,
        "diagnostics": table,
        "test": test,
        "images": len(x),
        "binarize": binarize,
        "reference_label": reference_label,
        "pens": pens,
        "ink": ink,
    }


def _told(model, some) -> dict:
    """The ``labels=`` a conditional model is told for the images ``some`` (their own labels or captions), else {}."""
    from .evaluation import labels_from

    return {"labels": getattr(some, labels_from(model))} if _kinds.of(model).labels else {}


def _asked(model, dataset: str, test, images: int, seed: int, binarize: bool, progress: bool) -> dict:
    """Does a conditional model draw what it is asked? Its prior samples read by the dataset's judge (drawviz.asked);
    for a label, the bound told each image's right class against a wrong one (the next class); for a caption, the bound
    and the judged share on captions seen and held out in training, and whether it follows the words."""
    from . import asked, data

    judge, by = asked.judge_for(dataset), f"models/{data.declared(dataset).judge}"
    if model.config.condition == "label":
        per_class = max(images // model.config.classes, 10)
        figures = asked.of_labels(model, judge, test, per_class, seeds=(seed,), binarize=binarize)
        names = data.class_names(dataset, model.config.classes)
        return {"condition": "label", "judge": by, "names": names, **figures}
    judged, follows, words = asked.of_seen_and_held_out(model, judge, test, max(images // 2, 10), seed=seed)
    bounds = {
        name: evaluate(model, part, seed=seed, binarize=binarize, progress=progress)["nll_bound"]
        for name, part in asked.caption_kinds(test).items()
    }
    return {
        "condition": "caption",
        "judge": by,
        "by_held_out": asked.accuracy(judged, "held_out"),
        "right": float(judged["right"].mean()),
        "drawings": len(judged),
        "follows": follows[["first_on_own", "first_on_other", "second_on_own", "second_on_other"]].mean(),
        "words": words.groupby(["held_out", "kind"])[["share", "even"]].sum(),  # by kind of caption, of word
        "bounds": bounds,
    }


def _asked_rows(m: dict, bound: dict) -> list[str]:
    """A conditional model's card rows: drawn as asked, and what the condition buys."""
    from . import asked

    a = m.get("asked")
    if not a:
        return []
    pct = lambda x: f"{100 * x:.1f} %"  # noqa: E731
    if a["condition"] == "label":
        t = a["per_class"]
        worst = t.loc[t["right"].idxmin()]
        overall = float((t["right"] * t["drawings"]).sum() / t["drawings"].sum())
        names = a["names"]
        return [
            f"| drawn as asked (drawviz.asked, {a['judge']}) | **{pct(overall)}** of {a['drawings']:,} prior samples "
            f"({int(t['drawings'].iloc[0])} per class) judged as the class asked; per class "
            + ", ".join(f"{names[int(r.asked)]}: {100 * r.right:.0f} %" for r in t.itertuples())
            + f"; worst {names[int(worst.asked)]} ({pct(worst.right)}); the judge reads {pct(a['judge_on_test'])} of the "
            f"{len(m['test']):,} test images as their class (the ceiling) |",
            f"| the label's worth | told each test image's right class {bound['nll_bound']:.2f} nats, told the next class "
            f"{a['wrong_label_bound']:.2f} ({a['wrong_label_bound'] - bound['nll_bound']:+.2f}; a label can buy at most "
            f"log 10 = 2.30 nats against the same model without it) |",
        ]
    h = a["by_held_out"].set_index("held_out")
    share = lambda held_out: (  # noqa: E731
        f"{pct(h.loc[held_out, 'right'])} of {int(h.loc[held_out, 'drawings'])}" if held_out in h.index else "–"
    )
    f, b = a["follows"], a["bounds"]
    return [
        f"| drawn as asked (drawviz.asked, {a['judge']}) | **{pct(a['right'])}** of {a['drawings']:,} test captions "
        f"drawn right (each digit judged as named, where the caption puts it): seen {share(False)}, held out "
        f"{share(True)} (class-balanced, drawn apart) |",
        f"| follows the words? | the first digit drawn while attending its word {pct(f['first_on_own'])} (the other "
        f"digit's word {pct(f['first_on_other'])}); the second {pct(f['second_on_own'])} ({pct(f['second_on_other'])}) |",
        "| where the alignment sits | its weight over all steps, in brackets what an even spread over the words would give; "
        + "; ".join(
            f"{'held-out' if held_out else 'seen'} captions: "
            + ", ".join(
                f"{named} {pct(a['words'].loc[(held_out, kind), 'share'])} ({pct(a['words'].loc[(held_out, kind), 'even'])})"
                for kind, named in asked.WORD_KINDS.items()
            )
            for held_out in a["words"].index.unique("held_out")
        )
        + " |",
        "| test bound, seen and held-out captions | " + "; ".join(f"{name} {v:.2f} nats" for name, v in b.items()) + " |",
    ]


def _drawing_order(model, scenes, x, seed: int) -> dict:
    """drawing order (drawviz.order) of the reconstructions of x (the scenes, as the model sees them) and of as
    many prior samples (their digits found as ink)."""
    before = order.initial_canvas(model)
    canvas = probes.record(model, x, seed=seed).canvas
    samples = probes.record_generation(model, len(x), seed=seed).canvas
    found = order.objects_from_canvas(samples[-1])
    measured = {}
    for by in order.READINGS:  # by visible change (the rule) and by when the final ink arrives
        _, recon = order.drawing_order(canvas, before, scenes.objects, by=by)
        _, drawn = order.drawing_order(samples, before, found, by=by)
        measured[by] = {"reconstructions": order.summary(recon, len(x)), "samples": order.summary(drawn, len(x))}
    return measured


def _measure_classifier(model, state: dict, test, *, images: int, seed: int, progress: bool) -> dict:
    """The numbers of a classifier's card: its test error and cross-entropy on the whole test set, where it
    looks on ``images`` class-balanced test images, and the error when it reads elsewhere."""
    from . import looking

    scored = evaluate(model, test, seed=seed, progress=progress)
    if not model.config.attention:  # it reads the whole image at once (the judge): there is nowhere it looks
        return {"state": state, "scored": scored, "test": test}
    some = test.balanced(images, seed=seed)
    looks = looking.where_it_looks(probes.record(model, some.images, seed=seed), some, seed=seed)
    return {
        "state": state,
        "scored": scored,
        "test": test,
        "images": len(some),
        "looks": looking.by_glimpse(looks),
        "elsewhere": looking.read_elsewhere(model, some, seed=seed),
    }


def _pens(pens) -> str:
    """The spread of pens that need no model, for the card's attention rows."""
    p = pens.set_index("pen").spread_px
    sweeps = sorted([p["clockwise sweep"], p["reading-order sweep"]])
    return (
        f"; a pen sweeping every digit's ink in one shared order: {sweeps[0]:.1f}-{sweeps[1]:.1f}, "
        f"anywhere on its ink: {p['anywhere on the ink']:.1f}"
    )


def _what_model(config, name: str) -> str:
    """How a card names a reference model: by what it is, measured from its config, not assumed."""
    if config.T == 1 and not config.attention:
        kind = "the one-shot VAE"
    elif not config.attention:
        kind = "the no-attention model"
    else:
        kind = "the attention model"
    return f"{kind} {_md(name)} (T = {config.T})"


def _limit(settings: dict) -> str:
    return f" ({settings['limit']:,} of its images, class-balanced)" if settings.get("limit") else " (all of it)"


def _recipe(settings: dict) -> str:
    r = settings.get("recipe") or {}
    if "decay" not in r:  # a file from before recipes: a constant rate
        return f"Adam, lr {r.get('lr', 1e-3):g} throughout, clip {r.get('clip', 10.0):g}, batch {r.get('batch_size', 64)}"
    # a checkpoint's recipe is data from a file: shown as text
    shape = "constant" if r["decay"] == "constant" else f"{_md(r['decay'])} decay to {r['final']:g}× by the end of the budget"
    warm = f"{r['warmup']}-step linear warm-up, " if r["warmup"] else ""
    return (
        f"Adam (β {r['beta1']:g}, {r['beta2']:g}, ε {r['adam_eps']:g}), peak lr {r['lr']:g}, {warm}{shape}; "
        f"gradient-norm clip {r['clip']:g}; batch {r['batch_size']}"
    )


def _hardware(args: dict, override: Optional[str]) -> str:
    if override:
        return _md(override)
    h = args.get("hardware")
    if not h:
        return "not recorded"
    torch = f"torch {_cell(h.get('torch', '?'))}"  # a code span: '2.14.1+cu130' reads as itself, unescaped
    if h.get("device") == "cuda":
        return f"{_md(h['name'])} (CUDA), {torch}"
    return (
        _md(f"{h['name']} ({h.get('isa', '?')}), {h.get('cores', '?')} cores, {h.get('threads', '?')} torch thread(s)")
        + f", {torch}"
    )


def _short_recipe(r: Optional[dict]) -> str:
    if not r:
        return "recipe not recorded"
    shape = "constant" if r["decay"] == "constant" else f"{_md(r['decay'])} to {r['final']:g}×"
    return f"lr {r['lr']:g} {shape}, batch {r['batch_size']}"


def _where(legs: list[dict]) -> str:
    """The machines a run's legs ran on, in order (a leg recorded before instruction sets were takes its
    machine's from the others)."""
    machines: dict = {}
    for leg in legs:
        key = (leg.get("machine"), leg.get("threads"))
        machines[key] = machines.get(key) or leg.get("isa")
    return " then ".join(
        _md(machine or "machine not recorded")
        + (f" ({_md(isa)})" if isa else "")
        + (f", {threads} thread{'s' if threads != 1 else ''}" if threads else "")
        for (machine, threads), isa in machines.items()
    )


def _distinct(values: list) -> list:
    return [v for i, v in enumerate(values) if v not in values[:i]]


_TIMES = {1: "once", 2: "twice"}


def _legs(state: dict) -> list[str]:
    """The card's rows for a training in several legs: each run (its legs, when it was stopped and resumed
    from its full checkpoint), and the totals over them."""
    runs, total = campaign.runs_of(state), campaign.totals(state)
    if not runs:
        return []
    parts = []
    for i, legs in enumerate(runs, 1):
        first, last = legs[0], legs[-1]
        minutes = sum((leg.get("end_seconds") or 0) - (leg.get("start_seconds") or 0) for leg in legs) / 60
        recipes = " then ".join(_distinct([_short_recipe(leg.get("recipe")) for leg in legs]))
        fresh = "; fresh Adam" if first.get("fresh_optimizer") and first["start_step"] > 0 else ""
        fresh += _fresh_scenes(legs)
        restarts = len(legs) - 1
        resumed = f"; stopped and resumed {_TIMES.get(restarts, f'{restarts} times')}" if restarts else ""
        parts.append(
            f"{i}. steps {first['start_step']:,}–{last['end_step']:,}, epochs {first.get('start_epoch') or 0:.2f}–"
            f"{last.get('end_epoch') or 0:.2f}, {minutes:.1f} min ({recipes}; {_where(legs)}{fresh}{resumed}"
            f"{'; reconstructed from the history' if first.get('reconstructed') else ''})"
        )
    compute = f"{total['cpu_hours']:.2f} CPU core-hours" + (f", {total['gpu_hours']:.2f} GPU hours" if total["gpu_hours"] else "")
    legs = f"{total['legs']} leg{'s' if total['legs'] != 1 else ''}"
    if len(runs) != total["legs"]:
        legs += f" in {len(runs)} run{'s' if len(runs) != 1 else ''}"
    return [
        f"| {'runs' if len(runs) != total['legs'] else 'legs'} | {'<br>'.join(parts)} |",
        f"| in all | {legs}: {total['steps']:,} steps, "
        f"{total['epochs']:.2f} epochs, {total['hours']:.2f} hours ({60 * total['hours']:.1f} min) of training, "
        f"{compute} |",
    ]


def _fresh_scenes(legs: list[dict]) -> str:
    """Where a run's scenes were drawn afresh each epoch (TrainConfig.fresh_scenes): said on its row."""
    fresh = [leg for leg in legs if leg.get("fresh_scenes")]
    if not fresh:
        return ""
    if fresh[0] is legs[0]:
        return "; its digits in new places, with new distractors, each epoch"
    return f"; from step {fresh[0]['start_step']:,} its digits in new places, with new distractors, each epoch"


def _left_out(after: int) -> str:
    if after == 1:
        return "; the one after them, in the cooldown, measures the anneal and is left out)"
    return f"; the {after} after them, in the cooldown, measure the anneal and are left out)"


def _flattened(state: dict) -> str:
    """The card's "flattened?" row: by the campaign's rule (drawviz.campaign.FLAT) where the dataset has one,
    the bound's fall per epoch over the last epochs beside its fall per hour; else by 1 % per hour."""
    s, history = campaign.slope(state), state.get("history", [])
    rule = campaign.FLAT.get(settings_of(state).get("dataset"))
    if s is None:
        return _trend(history)
    per_epoch = (
        (f"at the constant rate {s['lr']:.2g} " if s["lr"] is not None else "")
        + f"the bound {'fell' if s['nats_per_epoch'] >= 0 else 'rose'} {abs(s['nats_per_epoch']):.2f} nats "
        f"({abs(s['bits_per_dim_per_epoch']):.4f} bits/dim) per epoch over "
        f"epochs {s['from_epoch']:.1f}–{s['to_epoch']:.1f} ({s['evaluations']} evaluations, a least-squares line"
        + (_left_out(s["after"]) if s["after"] else ")")
    )
    if rule is None:
        return f"{_trend(history)}; {per_epoch}"
    if s["flat"] is None:  # a stretch shorter than the rule's epochs: too short to judge
        verdict = (
            f"not judged by the campaign's rule (under {rule[0]:g} {rule[1]} per epoch over "
            f"{campaign.FLAT_EPOCHS:g} epochs at one rate): its last constant stretch spans {s['span_epochs']:.1f} epochs"
        )
        return f"{verdict}; there {per_epoch}; {_trend(history, verdict=False)}"
    verdict = f"{'yes' if s['flat'] else 'no'} by the campaign's rule (under {rule[0]:g} {rule[1]} per epoch)"
    return f"{verdict}: {per_epoch}; {_trend(history, verdict=False)}"


def _trend(history: list, verdict: bool = True) -> str:
    """How fast the test bound was still falling at the end of training, from the evaluations in the history
    (the last one against the latest one at least 15 minutes of training before it); ``verdict``: open with
    whether that is under 1 % per hour."""
    tests = [
        (row["seconds"] / 60, row["test_nll_bound"], row.get("lr"))
        for row in history
        if row.get("test_nll_bound") is not None and math.isfinite(row["test_nll_bound"])
    ]
    if len(tests) < 2:
        return "not known: fewer than two test evaluations during training"
    m1, b1, _ = tests[-1]
    m0, b0, _ = next((t for t in reversed(tests[:-1]) if m1 - t[0] >= 15), tests[-2])
    per_hour = (b0 - b1) / max(m1 - m0, 1e-9) * 60
    judged = ("yes: under 1 % per hour" if per_hour < 0.01 * abs(b1) else "no: still falling") if verdict else "per hour"
    lrs = [row.get("lr") for row in history if row.get("lr")]
    annealed = (
        (
            f"; the learning rate had annealed to {lrs[-1] / max(lrs):.0%} of its peak by then, so the "
            f"slope understates what more training at a useful rate would give"
        )
        if lrs and lrs[-1] < 0.5 * max(lrs)
        else ""
    )
    return (
        f"{judged} (the bound during training fell {b0 - b1:.2f} nats from minute {m0:.0f} to {m1:.0f}, "
        f"≈ {per_hour:.1f} nats per hour, on the evaluation images used in training{annealed})"
    )


def model_card(
    checkpoint,
    *,
    data_root=None,
    reference=None,
    images: int = 256,
    seed: int = 0,
    command: Optional[str] = None,
    hardware: Optional[str] = None,
    title: Optional[str] = None,
    progress: bool = False,
) -> str:
    """A Markdown card for ``checkpoint`` (measured now; see the module docstring)."""
    m = measure(checkpoint, data_root=data_root, reference=reference, images=images, seed=seed, progress=progress)
    if "scored" in m:
        return _classifier_card(checkpoint, m, data_root=data_root, command=command, hardware=hardware, title=title)
    state, bound, table = m["state"], m["bound"], m["diagnostics"]
    args, history, config = state.get("train_args", {}), state.get("history", []), state["config"]
    settings = settings_of(state)
    last = history[-1] if history else {}
    minutes = last.get("seconds", math.nan) / 60
    epochs = last.get("epoch", math.nan)
    size = Path(checkpoint).stat().st_size / 1e6
    kind = "with attention" if config.attention else "without attention (the paper's baseline, eq. 17-18)"
    if config.T == 1 and not config.attention:  # one step writes the whole image: a plain VAE
        kind = "with T = 1 and no attention: a one-shot VAE"
    attention = (
        f"read {config.read_n}×{config.read_n}, write {config.write_n}×{config.write_n}"
        if config.attention
        else "none: full read and write"
    )
    named, network, who = f"DRAW {kind}", None, "DRAW"
    if hasattr(config, "conditioning"):  # a conditional DRAW (drawviz.conditional)
        named = f"DRAW {kind}, told what to draw: a {config.condition}"
    if hasattr(config, "describe"):  # another kind of generator (a convvae) says what its network is
        other = _kinds.for_config(config)
        named, network, who = other.help, config.describe(), other.model.__name__
    lines = [
        f"## {_code(Path(checkpoint).name)} — {_md(title) if title else named} ({size:.1f} MB)",
        "",
        "| | |",
        "|---|---|",
        f"| config | {network} |"
        if network
        else f"| config | {config.height}×{config.width}×{config.channels}, T = {config.T}, LSTM {config.enc_size}/"
        f"{config.dec_size}, z {config.z_size}, attention {attention}"
        + "".join(f"; {_md(k)} {_md(v)} (beyond the paper)" for k, v in config.beyond_paper().items())
        + (f"; {_md(config.conditioning)}" if hasattr(config, "conditioning") else "")
        + " |",
        f"| data | the {_md(settings.get('dataset', '?'))} training set{_limit(settings)}"
        + (f", read from {_cell(_data.portable(args['train_source'], data_root))}" if args.get("train_source") else "")
        + "; "
        + (
            f"binarisation: {_md(settings.get('binarize'))} for training, static (seed {seed}) for every test figure |"
            if m["binarize"]
            else "8-bit intensities, not binarised |"
        ),
        f"| likelihood | {describe(config.likelihood, m['binarize']).removeprefix('likelihood: ')} |",
        f"| recipe | {_recipe(settings)} |",
        f"| training | {state['step']:,} steps, {epochs:.2f} epochs, {minutes:.1f} minutes of training "
        f"(evaluations not counted) |",
        *_legs(state),
        f"| command | {_cell(command) if command else 'not recorded'} |",
        f"| hardware | {_hardware(args, hardware)} |",
        f"| test NLL bound | **{bound['nll_bound']:.2f} nats** ({bound['bits_per_dim']:.4f} bits/dim; reconstruction "
        f"{bound['recon_nll']:.2f} + KL {bound['kl']:.2f}) on all {bound['images']:,} test images of "
        f"{_cell(_data.portable(m['test'].source, data_root))} "
        f"({_cell('python -m drawviz evaluate ' + Path(checkpoint).as_posix())}) |",
    ]
    if m.get("anchors"):
        a = m["anchors"]
        behind = bound["bits_per_dim"] - a["full_covariance"]
        lines.append(
            f"| same-data anchors (drawviz.anchors) | {_anchors.sentence(bound['bits_per_dim'], a, who)}: "
            + (
                f"**{behind:.2f} bits/dim behind** the full-covariance Gaussian"
                if behind > 0
                else f"{-behind:.2f} bits/dim ahead of it"
            )
            + f" (covariance shrinkage δ = {a['shrinkage']:.1g}, chosen on held-out training images) |"
        )
    lines += _asked_rows(m, bound)
    lines.append(f"| flattened? | {_flattened(state)} |")
    rows = {r["op"]: r for r in table.to_dict("records")}
    steps = table["steps"].iloc[0] if len(table) else ""
    pens = "" if m.get("pens") is None else _pens(m["pens"])
    ink = m.get("ink")
    box = "" if ink is None else f"; the images' ink spans a median box of {ink['width']:.2f} × {ink['height']:.2f} of the image"
    for op in ("write", "read"):
        if op in rows:
            r, beside = rows[op], box if op == "write" else ""  # the subject's size once, on the target's row
            lines.append(
                f"| {op} attention, steps {steps} | footprint N·δ + 2σ: median {r['footprint']:.2f} of the "
                f"width ({r['footprint_px']:.1f} px{beside}); centre spread across images {r['spread_px']:.2f} px "
                f"(uniform centres: {r['spread_uniform_px']:.1f}{pens}); centres off the image "
                f"{100 * r['off_image']:.1f} % |"
            )
    if "canvas" in rows:
        r = rows["canvas"]
        ref = r["edit_area_reference"]
        lines.append(
            f"| edit area, steps {steps} | median share of pixels receiving 90 % of a step's canvas change "
            f"abs(c_t − c_{{t−1}}): "
            f"{r['edit_area']:.3f}" + (f" ({m['reference_label']} on the same images: {ref:.3f})" if ref == ref else "") + " |"
        )
    if m.get("drawing_order"):
        said = {"change": "of its visible canvas change", "ink": "of its final ink (σ(c_T) > 0.5) in place"}
        parts = []
        for by in order.READINGS:
            r, g = m["drawing_order"][by]["reconstructions"], m["drawing_order"][by]["samples"]
            parts.append(
                f"by {by}: drawn one digit at a time (one digit has 80 % {said[by]} before the other has 20 %) "
                f"**{100 * r['one_at_a_time']:.1f} %** of {r['measured']} test reconstructions, {r['switches']:.1f} "
                f"switches between the digits on average, the two digits' halves {r['half_gap']:.0f} steps apart "
                f"(median); prior samples: {100 * g['one_at_a_time']:.1f} % of the {g['measured']} of {g['of']} "
                f"where two digits were found as ink, {g['switches']:.1f} switches"
            )
        lines.append(f"| drawing order (drawviz.order) | {'<br>'.join(parts)} |")
    lines.append(
        f"| measured on | diagnostics: {m['images']} test images, class-balanced, drawn with seed {seed}"
        + (f", binarised with seed {seed} |" if m["binarize"] else " |")
    )
    return "\n".join(lines) + "\n"


def _error_trend(history: list) -> str:
    """The test error over the last evaluations of training (they may be on fewer test images than the card's)."""
    tests = [
        (row["epoch"], row["test_error"])
        for row in history
        if row.get("test_error") is not None and row["test_error"] == row["test_error"]
    ]
    if len(tests) < 2:
        return "not known: fewer than two test evaluations during training"
    last = tests[-6:]
    return ", ".join(f"{100 * e:.2f} % (epoch {ep:.1f})" for ep, e in last)


def _classifier_card(checkpoint, m: dict, *, data_root, command, hardware, title) -> str:
    """The card of a read-only classifier (section 4.1): its error beside the paper's Table 1, where it looks,
    and what reading elsewhere does."""
    from .classifier import PAPER_TABLE_1

    state, scored, config = m["state"], m["scored"], m["state"]["config"]
    args, history = state.get("train_args", {}), state.get("history", [])
    settings = settings_of(state)
    last = history[-1] if history else {}
    size = Path(checkpoint).stat().st_size / 1e6
    glimpses = "looks" in m  # the read-only DRAW of section 4.1; else a classifier of whole images (the judge)
    if glimpses:
        named = f"the read-only DRAW classifier, {config.T} glimpses"
        network = (
            f"{config.height}×{config.width}×{config.channels}, {config.T} glimpses of {config.read_n}×{config.read_n} "
            f"through DRAW's read attention, LSTM {config.enc_size}, softmax over {config.classes} classes"
        )
    else:
        named, network = _kinds.for_config(config).help, config.describe()
    lines = [
        f"## {_code(Path(checkpoint).name)} — {_md(title) if title else _md(named)} ({size:.1f} MB)",
        "",
        "| | |",
        "|---|---|",
        f"| config | {network} |",
        f"| data | the {_md(settings.get('dataset', '?'))} training set{_limit(settings)}"
        + (f": {_cell(_data.portable(args['train_source'], data_root))}" if args.get("train_source") else "")
        + "; 8-bit intensities, not binarised |",
        f"| recipe | {_recipe(settings)}; cross-entropy |",
        f"| training | {state['step']:,} steps, {last.get('epoch', math.nan):.2f} epochs, "
        f"{last.get('seconds', math.nan) / 60:.1f} minutes of training (evaluations not counted) |",
        *_legs(state),
        f"| command | {_cell(command) if command else 'not recorded'} |",
        f"| hardware | {_hardware(args, hardware)} |",
        f"| test error | **{100 * scored['error']:.2f} %** (cross-entropy {scored['cross_entropy']:.3f} nats) on all "
        f"{scored['images']:,} test images of {_cell(_data.portable(m['test'].source, data_root))} "
        f"({_cell('python -m drawviz evaluate ' + Path(checkpoint).as_posix())}) |",
    ]
    if not glimpses:
        return "\n".join([*lines, f"| during training | test error {_error_trend(history)} |"]) + "\n"
    paper = "; ".join(
        f"{_md(name)} {100 * error:.2f} %" for name, glimpses, error in PAPER_TABLE_1 if glimpses in (None, config.T)
    )
    looks = m["looks"]
    first, final = looks.iloc[0], looks.iloc[-1]
    elsewhere = "; ".join(f"{_md(r.condition)} {100 * r.error:.1f} %" for r in m["elsewhere"].itertuples())
    lines += [
        f"| the paper's Table 1 | {paper} |",
        f"| during training | test error {_error_trend(history)} |",
        f"| where it looks (drawviz.looking) | the glimpse's centre to the digit's centre, median: {first.distance:.1f} px "
        f"at glimpse 1, {final.distance:.1f} px at glimpse {config.T} (a window placed at random: {final.chance_distance:.1f}); "
        f"the last glimpse covers the digit's centre in **{100 * final.covers:.1f} %** of images (a random window of "
        f"its size: {100 * final.chance_covers:.1f} %); footprint N·δ from {first.footprint:.1f} px to "
        f"{final.footprint:.1f} px |",
        f"| reading elsewhere | test error with {elsewhere} |",
        f"| measured on | where it looks and reading elsewhere: {m['images']} test images, class-balanced |",
    ]
    return "\n".join(lines) + "\n"


def into_file(path, card: str, waits=(0.1, 0.2, 0.5, 1.0, 2.0, 5.0)) -> Path:
    """Put ``card`` into the page at ``path`` (into_page), holding the page while it is read and written, so that
    two cards written into one page at once both land; a page held by another writer is waited for (``waits``,
    seconds) before InUse is raised."""
    import time

    from .files import InUse, exclusive, write_text

    page = Path(path)
    for wait in (*waits, None):
        try:
            with exclusive(page, "a model card"):
                return write_text(page, into_page(page.read_text(encoding="utf-8") if page.exists() else "", card))
        except InUse:
            if wait is None:
                raise
            time.sleep(wait)


def into_page(page: str, card: str) -> str:
    """``page`` (e.g. models/README.md) with ``card`` in it: the table under the heading of the card's model
    replaced, the heading keeping its title (its size in MB updated) and the prose after the table kept, so a
    leg's new card does not undo what was written about the model; the card appended when the page has no
    section for it yet."""
    head, _, table = card.partition("\n\n")
    name = re.match(r"## (`[^`]+`)", head)
    if name is None:
        raise ValueError("a card starts with its model's heading, '## `file.pt` — ...'")
    lines = page.splitlines()
    starts = [i for i, line in enumerate(lines) if line == f"## {name[1]}" or line.startswith(f"## {name[1]} ")]
    if not starts:
        return page.rstrip("\n") + "\n\n" + card
    at = starts[0]
    size = re.search(r"\((\d+(?:\.\d+)?) MB", head)
    heading = re.sub(r"\(\d+(?:\.\d+)? MB", f"({size[1]} MB", lines[at]) if size else lines[at]
    end = at + 1
    while end < len(lines) and not lines[end].strip():
        end += 1
    while end < len(lines) and lines[end].startswith("|"):  # the old table
        end += 1
    new = [*lines[:at], heading, "", *table.rstrip("\n").splitlines(), *lines[end:]]
    return "\n".join(new) + "\n"
