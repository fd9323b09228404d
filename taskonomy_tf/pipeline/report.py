"""``report.md`` and ``report.html`` from the stages' results.

The report is built as a list of blocks (heading, text, table, image) and
rendered twice, so the two files always say the same thing.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from taskonomy_tf.config import DEFAULT_TASKS
from taskonomy_tf.fileio import write_text_atomic

STAGE_NAMES = ("data", "train", "transfers", "taxonomy", "figures")


def _fmt(v, digits=3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _transfer_name(key: str, display_name) -> str:
    """``target<-a+b`` -> ``A + B -> Target`` in catalog titles."""
    target, _, sources = key.partition("<-")
    return " + ".join(display_name(s) for s in sources.split("+")) + " -> " + display_name(target)


# Cluster contrasts of the paper's released 16k affinities restricted to the
# default six tasks, DEFAULT_TASKS (results/affinities/all_affinities_16k.pkl of
# StanfordVL/taskonomy; computed by compare.cluster_contrasts, tested).
PAPER_CONTRASTS = {"3d->3d / 2d->3d": 4.63, "2d->2d / 3d->2d": 37.6}


def _network_budget(n) -> str:
    """How long each network trained, in words (``networks`` section)."""
    if not n.validations:
        return f"{n.steps} steps each"
    budget = f", or {n.max_seconds:g} s" if n.max_seconds is not None else ""
    stop = f", stopped after {n.patience} without a better one" if n.patience else ""
    return (f"up to {n.steps} steps each{budget}, validated {n.validations} times{stop}, the "
            "state with the lowest validation loss kept")


def _steps(v: dict) -> str:
    """The steps column: the kept state's step, and the steps trained when
    training went on past it (``kept of trained``), with why it stopped
    early (the validation loss, or the time budget)."""
    kept, trained = v.get("kept_step"), v.get("steps")
    if kept is None or kept == trained:
        return _fmt(trained)
    why = {"patience": ", stopped: validation loss", "time": ", stopped: time budget"}
    return f"{kept} of {trained}{why.get(v.get('stopped'), '')}"


def _network_blocks(cfg, res, display_name) -> list[tuple]:
    from taskonomy_tf.training.callbacks import TIE  # Keras: imported when a report is built

    metrics = res["train"]["metrics"]
    wins = res.get("taxonomy", {}).get("network_win_rates") or {}

    def pct(t, ref):
        v = wins.get(t, {}).get(ref)
        return "–" if v is None else f"{v:.0%}"

    rows = [[display_name(t), _fmt(v["constant_val_loss"]), _fmt(v.get("untrained_val_loss")),
             _fmt(v["val_loss"]), _fmt(v.get("ratio_to_floor", v["ratio_to_constant"]), 2),
             pct(t, "constant"), pct(t, "random"), _steps(v)]
            for t, v in metrics.items()]
    weak = res["train"].get("weak") or {}
    text = ("Each network's validation loss (the task's own loss, per image, on 'val') beside "
            "its floor: the lower of the best constant prediction's (the per-pixel median or "
            "mean of the training split's targets, whichever the loss calls for; for the "
            "segmentation metric, a per-pixel embedding fitted to it) and the same network's "
            "before training. The ratio to the floor must be well "
            "below 1 for the network to carry information about its task; the run stops above "
            f"{cfg.networks.max_constant_ratio:g}. Beside it, the paper's Table 1 measure: the "
            "share of test images on which the network beats the constant prediction, and the "
            "readout of the untrained (random) encoder. Steps: those of the state kept (the one "
            f"with the lowest validation loss, ties within {TIE:.0%} to the later), of those "
            "trained.")
    out = [("h2", "Do the task networks learn their tasks?"), ("p", text),
           ("table", ["task", "constant guess", "untrained", "network", "ratio to floor",
                      "wins vs constant", "wins vs random", "steps"], rows)]
    if weak:
        out.append(("p", "Warning: " + ", ".join(f"{display_name(t)} ({r:.2f})"
                                                 for t, r in weak.items())
                    + " did not beat their floor clearly; their rows and columns measure "
                      "little (the run continued because of --allow-weak-networks)."))
    return out


def _structure_blocks(tasks, tax, boot, display_name) -> list[tuple]:
    contrasts = tax.get("contrasts") or {}
    if not contrasts:
        return []
    paper = set(tasks) == set(DEFAULT_TASKS)  # what PAPER_CONTRASTS were computed on
    head = ["contrast", "this run", f"{boot['confidence']:.0%} interval"]
    rows = []
    for k, v in contrasts.items():
        row = [k, f"{v['value']:.2f}", f"{v['low']:.2f} - {v['high']:.2f}"]
        if paper:
            row.append(f"{PAPER_CONTRASTS[k]:g}" if k in PAPER_CONTRASTS else "–")
        rows.append(row)
    text = ("Do tasks of one family (the catalog's clusters, 3D: depth, normals, reshading...; "
            "2D: edges, keypoints, autoencoding...; or a dataset card's `cluster`) transfer "
            "better among themselves than from another family? "
            "Each contrast is a ratio of mean first-order affinities (A->A over B->A), with a "
            f"percentile interval over {boot['resamples']} resamples of {_resampled(boot)} and "
            f"of {_replicates(boot)}. A ratio above 1 whose "
            "interval excludes 1 is a measured structure.")
    return [("h3", "Structure check: cluster contrasts"), ("p", text),
            ("table", head + (["paper, same six tasks"] if paper else []), rows)]


def _best_source_blocks(aff, boot: dict, display_name) -> list[tuple]:
    """Each target's best first-order source in this run and how often each
    source is the best over the bootstrap's resamples (absent from a
    bootstrap written before it counted them)."""
    from taskonomy_tf.taxonomy.compare import best_sources

    shares = boot.get("best_source")
    if not shares:
        return []
    best = best_sources(aff)
    rows = [[display_name(t), " = ".join(display_name(s) for s in best.get(t, [])) or "–",
             ", ".join(f"{display_name(s)} {v:.0%}" for s, v in shares[t].items())]
            for t in sorted(shares)]
    return [("h3", "The best source of each target, and how sure"),
            ("p", f"The source with the highest affinity into each target, and how often each "
                  f"source is the best over {boot['resamples']} resamples of {_resampled(boot)} "
                  f"and of {_replicates(boot)}: a source named in nearly every resample is the "
                  "best one; two sharing the resamples are a near-tie this grid cannot "
                  "separate (a cheaper estimate naming either agrees with the grid as far as "
                  "the grid can tell)."),
            ("table", ["target", "best source", "share of resamples"], rows)]


def _dictionary_share(boot: dict, key: str, roots) -> str:
    """How often the resamples choose exactly this run's dictionary."""
    from taskonomy_tf.taxonomy.bootstrap import dictionary_key

    shares = (boot.get("dictionaries") or {}).get(key)
    if shares is None:
        return ""
    return (f"This exact dictionary in {shares.get(dictionary_key(roots), 0.0):.0%} of "
            "resamples. ")


def _replicates(boot: dict) -> str:
    """What the bootstrap drew besides the images: readouts, or network sets and readouts."""
    n, r = boot.get("networks", 1), boot.get("replicates", 1)
    if n > 1:
        return f"the {n} sets of task networks and their readout replicates ({r} in all)"
    return f"the {r} readout replicates"


def _resampled(boot: dict) -> str:
    """What the bootstrap drew: the test images' groups (buildings), or images."""
    if boot.get("unit", "images") == "groups":
        return (f"the {boot['groups']} groups (buildings) the test images come in (each "
                "with all its images)")
    return "the test images"


def _prefilter_blocks(res: dict, targets, display_name) -> list[tuple]:
    """What a pre-filtered grid trained, and which of its affinities are
    the estimator's (``transfers.complete``)."""
    pre = res["transfers"].get("prefilter")
    if not pre:
        return []
    kept = pre["kept"]
    estimated = res["taxonomy"].get("estimated") or {}
    unscored = [display_name(t) for t in targets if t not in kept]
    text = (f"Pre-filtered grid: {len(kept)} targets trained only their {pre['k']} best "
            f"sources by the {pre['estimator']} estimate, beside the baselines"
            + (f" ({', '.join(unscored)}, which the estimator cannot score or complete, "
               "trained every source)" if unscored else "") + ". ")
    if estimated:
        n = sum(map(len, estimated.values()))
        text += (f"The {n} affinities of the sources they did not train are the estimator's, "
                 "tied to the trained ones through the comparisons both share "
                 "(transfers.complete; Harker's incomplete AHP): the program sees whole rows "
                 "as in a full grid, but those cells are estimates, not measurements: "
                 + "; ".join(f"into {display_name(t)}: "
                             + ", ".join(display_name(x) for x in v)
                             for t, v in sorted(estimated.items())) + ".")
    else:
        text += ("Their rows hold only the trained sources: the program cannot choose an "
                 "untrained source to serve them, and their weights are normalised over fewer "
                 "candidates than a full grid's.")
    return [("p", text)]


def _blocks(ctx) -> list[tuple]:
    from taskonomy_tf.taxonomy import load_table
    from taskonomy_tf.viz import affinity_matrix, display_name

    cfg, res, out = ctx.config, ctx.results, ctx.out
    if res["transfers"].get("mode") == "estimate":
        from taskonomy_tf.pipeline.estimate_mode import estimate_blocks

        return estimate_blocks(ctx)
    tax = res["taxonomy"]
    aff = load_table(out / tax["tables"]["affinities"])
    rows = json.loads((out / tax["sweep"]).read_text())
    chosen = json.loads((out / tax["taxonomy"]).read_text())
    boot = json.loads((out / tax["bootstrap"]).read_text())
    figs = res["figures"]["figures"]
    images = cfg.transfers.images or "all"
    b = [("h1", "Task taxonomy report"),
         ("p", f"Data: {res['data']['source']}. Tasks ({len(ctx.tasks)}): "
               f"{', '.join(display_name(t) for t in ctx.tasks)}. Networks at "
               f"{cfg.data.image_size} px, "
               f"{_network_budget(cfg.networks)}; transfers: {images} images of the "
               f"{res['transfers']['transfer_split']!r} split, {cfg.transfers.steps} steps, "
               f"{cfg.transfers.seeds} replicate seeds per candidate (losses averaged over "
               f"them), evaluated image by image on 'test'; max order {cfg.transfers.max_order}; "
               f"seed {cfg.seed}"
               + (f"; {cfg.networks.seeds} sets of task networks, each with its own seed and "
                  "transfer grid, their losses averaged" if cfg.networks.seeds > 1 else "")
               + ".")]
    skipped = res["data"].get("skipped") or {}
    if skipped:
        b.append(("p", f"Skipped ({len(skipped)}, not supplied by the data): " + "; ".join(
            f"{display_name(t)}: {why}" for t, why in skipped.items()) + "."))
    b += _network_blocks(cfg, res, display_name)
    b += [("h2", "Task affinities"),
          ("p", "Each cell: how well a frozen source network's representation transfers to a "
                "target (AHP affinity from per-image win rates; higher = better transfer). "
                "Left: each transfer's win rate against the target's own network, before "
                "AHP. Grey: not run (a task's own representation)."),
          ("img", figs["heatmap"], "affinity heatmap")]
    b += _prefilter_blocks(res, aff.targets, display_name)
    b += _structure_blocks(ctx.tasks, tax, boot, display_name)
    below = tax.get("random_not_beaten") or {}
    if below:
        b.append(("p", "Trained sources that transfer no better than the untrained (random) "
                       "encoder: " + "; ".join(
                           f"into {display_name(t)}: "
                           + ", ".join(display_name(s) for s in v) for t, v in below.items())
                       + ". A random encoder keeps generic image information that a task "
                         "network may discard; it is a reference, never a supervised task."))
    else:
        b.append(("p", "Every trained source transfers better than the untrained (random) "
                       "encoder into every target."))
    sources, targets, m = affinity_matrix(aff)
    b.append(("table", ["source \\ target"] + [display_name(t) for t in targets],
              [[display_name(s)] + [_fmt(v) for v in row] for s, row in zip(sources, m)]))
    b += _best_source_blocks(aff, boot, display_name)
    ratios = tax.get("mean_loss_ratio") or {}
    if ratios:
        names = sorted({c for v in ratios.values() for c in v} - {"constant"},
                       key=lambda c: (c in ("self", "pixels", "random"), c))
        b += [("p", "Mean test loss of every candidate over the constant prediction's (below 1 "
                    "= better than the floor); rows: candidates, columns: targets."),
              ("table", ["candidate \\ target"] + [display_name(t) for t in ratios],
               [[display_name(c)] + [_fmt(ratios[t].get(c), 3) for t in ratios]
                for c in names])]
    b += [("img", figs["heatmap_clustered"], "clustered heatmap"),
          ("h2", f"The taxonomy at budget {ctx.budget:g}"),
          ("p", f"Supervised: {', '.join(display_name(r) for r in chosen['roots'])}; "
                f"objective {chosen['objective']:.4f} ({chosen['status']})."),
          ("img", figs["graph"], "taxonomy graph")]
    key = next(iter(boot["roots"]), None)
    if key is not None:
        roots = boot["roots"][key]
        transfers = boot["transfers"][key]
        stable = [t for t, share in transfers.items() if share >= 0.9]
        b += [("h3", "How stable is this choice?"),
              ("p", f"Over {boot['resamples']} resamples of {_resampled(boot)} and of "
                    f"{_replicates(boot)}: supervised in "
                    + ", ".join(f"{display_name(t)} {v:.0%}" for t, v in roots.items()) + ". "
                    + _dictionary_share(boot, key, chosen["roots"])
                    + (f"{len(stable)} transfer(s) chosen in at least 90% of resamples; "
                       if stable else "No transfer is chosen in 90% of resamples; ")
                    + "the others change with the resample. "
                    + (f"The resamples draw the {boot['networks']} sets of task networks too, "
                       "so these shares cover retraining the networks."
                       if boot.get("networks", 1) > 1 else
                       "The task networks were trained once, so retraining them is not "
                       "covered here (networks.seeds=1; set it to 2 or more, or compare runs "
                       "with other --seed values: docs/results.md shows how much that moves).")),
              ("table", ["transfer", "share of resamples"],
               [[_transfer_name(k, display_name), f"{v:.0%}"] for k, v in transfers.items()]),
              ("img", figs["heatmap_intervals"], "affinities with intervals")]
    b += [
          ("h2", "Dictionaries per budget"),
          ("table", ["budget", "supervised", "objective", "Gain", "Quality", "status"],
           [[_fmt(r["budget"]), ", ".join(display_name(x) for x in r.get("roots", [])) or "–",
             _fmt(r.get("objective"), 4), _fmt(r.get("gain"), 2), _fmt(r.get("quality"), 2),
             r["status"]] for r in rows]),
          ("img", figs["budget"], "budget curves")]
    win = [k for k in figs if k.startswith("winrates_")]
    if win:
        b.append(("img", figs[win[0]], "win rates of one target"))
    if tax.get("oracle"):
        b += _oracle_blocks(tax["oracle"], display_name)
    if "planted" in tax:
        b += _planted_blocks(tax["planted"], display_name)
    if "agreement" in tax:
        b += _agreement_blocks(json.loads((out / tax["agreement"]).read_text()), display_name)
    b += [("h2", "What ran"),
          ("table", ["stage", "seconds"],
           [[s, _fmt(res[s]["seconds"], 4)] for s in STAGE_NAMES if s in res]),
          ("p", f"{res['transfers']['jobs']} transfer jobs, one per target and order, each "
                f"training all its readouts together ({res['transfers']['job_seconds']:.0f} s "
                "of job time). What differs from the paper, and how a bigger run changes the "
                "numbers: docs/results.md.")]
    return b


def _oracle_blocks(oracle: dict, display_name) -> list[tuple]:
    """Label oracles beside the networks (``transfers.oracle``)."""
    sources = sorted({s for v in oracle.values() for s in v["network_over_labels"]})
    text = ("What the data builds in, beside what the networks learn: each target was also "
            "read out of every other task's true labels (an oracle:<task> candidate, the "
            "labels on the code grid in the same 8 channels), never part of the affinities. "
            "Spearman: how the sources rank by their networks against by their labels (near "
            "1: the ranking is already in the labels). The cells: a source's test loss through "
            "its network over through its labels (near 1: the network carries what its label "
            "carries into this target; above 1: less; below 1: more).")
    rows = [[display_name(t), f"{v['spearman']:.2f}"]
            + [_fmt(v["network_over_labels"].get(s), 3) for s in sources]
            for t, v in oracle.items()]
    return [("h2", "Label oracles: what the data builds in"), ("p", text),
            ("table", ["target", "Spearman"] + [display_name(s) for s in sources], rows)]


def _planted_blocks(p: dict, display_name) -> list[tuple]:
    """How well the run recovered a planted taxonomy (``synth.planted``)."""
    iv = p.get("family_contrast_interval") or {}
    d = p["dictionary"]
    text = (f"The data is a planted taxonomy: its true families and within-family orders are "
            f"known (planted.json). Family contrast (mean affinity within a family over "
            f"between families): {_fmt(p['family_contrast'], 3)}"
            + (f" ({_fmt(iv.get('low'), 3)} - {_fmt(iv.get('high'), 3)})" if iv else "")
            + f". Within-family source orders against the planted ones: mean Spearman "
              f"{_fmt(p['mean_within_spearman'], 2)} over {len(p['within_spearman'])} targets "
              "whose planted order is strict. At a budget of one task per family "
              f"({d['budget']}), the dictionary supervises "
              f"{', '.join(display_name(r) for r in d['roots']) or 'nothing'}: "
              + ("one task of each family." if d["one_per_family"] else
                 "not one task of each family."))
    return [("h2", "Recovery of the planted taxonomy"), ("p", text),
            ("table", ["target", "Spearman with the planted order"],
             [[display_name(t), f"{v:.2f}"] for t, v in p["within_spearman"].items()])]


def _agreement_blocks(cmp: dict, display_name) -> list[tuple]:
    """The comparison with the published affinities (``compare_published``)."""
    if not cmp.get("targets"):
        return []
    t = cmp["targets"]
    from taskonomy_tf.taxonomy.compare import yardstick_summary

    left = cmp.get("left_out") or {}
    out = [("h2", "Agreement with the published affinities")]
    if left:
        out.append(("p", "Left out of this comparison, as sources and as targets: "
                         + ", ".join(f"{display_name(k)} (validation loss {v:.2f} of its floor)"
                                     for k, v in left.items())
                         + ". These networks did not learn their tasks (above "
                           "networks.max_constant_ratio, kept by networks.allow_weak): an "
                           "untrained network's code ranks by chance in every target it "
                           "enters, and says nothing about the task it was meant for."))
    out += [("p", yardstick_summary(cmp)),
           ("p", "Per target: Spearman's rho between the two rankings of its sources, how many "
                 "of the published top 3 are in ours, and what two unrelated rankings of that "
                 f"many sources give ({cmp['confidence']:.0%} range)."),
           ("table", ["target", "sources", "Spearman", "null range", "top-3 overlap",
                      "null mean", "same best source"],
            [[display_name(k), v["sources"], f"{v['spearman']:.2f}",
              f"{v['spearman_null'][0]:.2f} - {v['spearman_null'][1]:.2f}",
              f"{v['topk_overlap']} of {v['k']}", f"{v['overlap_null']['mean']:.2f}",
              "yes" if v["top1_agrees"] else "no"] for k, v in t.items()])]
    ours, pub = cmp["contrasts"]["ours"], cmp["contrasts"]["published"]
    if ours or pub:
        out.append(("table", ["cluster contrast (same tasks, AHP ratio)", "ours", "published"],
                    [[k, _fmt(ours.get(k), 2), _fmt(pub.get(k), 2)]
                     for k in sorted(set(ours) | set(pub))]))
    ours, pub = (cmp.get("rank_contrasts") or {}).get("ours", {}), \
        (cmp.get("rank_contrasts") or {}).get("published", {})
    if ours or pub:
        out.append(("table", ["rank contrast (share of source pairs won; 0.5: none)", "ours",
                              "published"],
                    [[k, _fmt(ours.get(k), 2), _fmt(pub.get(k), 2)]
                     for k in sorted(set(ours) | set(pub))]))
    if cmp.get("dictionaries"):
        def names(v):
            return v if isinstance(v, str) else ", ".join(display_name(x) for x in v)

        out.append(("table", ["budget", "our dictionary", "published, same tasks"],
                    [[b, names(r["ours"]), names(r["published"])]
                     for b, r in cmp["dictionaries"].items()]))
    return out


def _markdown(blocks) -> str:
    lines = []
    for kind, *a in blocks:
        if kind == "h1":
            lines += [f"# {a[0]}", ""]
        elif kind in ("h2", "h3"):
            lines += [f"{'#' * int(kind[1])} {a[0]}", ""]
        elif kind == "p":
            lines += [a[0], ""]
        elif kind == "img":
            lines += [f"![{a[1]}]({a[0]})", ""]
        elif kind == "table":
            head, rows = a
            lines += ["| " + " | ".join(map(str, head)) + " |",
                      "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
            lines.append("")
    return "\n".join(lines)


def _html(blocks) -> str:
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Task taxonomy report"
             "</title><style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;"
             "color:#222}table{border-collapse:collapse;font-size:13px;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}img{max-width:100%}</style>"
             "</head><body>"]
    for kind, *a in blocks:
        if kind in ("h1", "h2", "h3", "p"):
            parts.append(f"<{kind}>{esc(a[0])}</{kind}>")
        elif kind == "img":
            parts.append(f"<p><img src='{esc(a[0])}' alt='{esc(a[1])}'></p>")
        elif kind == "table":
            head, rows = a
            parts.append("<table><tr>" + "".join(f"<th>{esc(str(h))}</th>" for h in head)
                         + "</tr>" + "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>"
                                                              for c in r) + "</tr>"
                                             for r in rows) + "</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(ctx) -> dict:
    """Writes ``report.md`` and ``report.html`` into the output folder."""
    blocks = _blocks(ctx)
    for name, text in (("report.md", _markdown(blocks)), ("report.html", _html(blocks))):
        write_text_atomic(Path(ctx.out) / name, text)
    return {"report": "report.md", "html": "report.html"}
