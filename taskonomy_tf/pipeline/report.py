"""``report.md`` and ``report.html`` from the stages' results.

The report is built as a list of blocks (heading, text, table, image) and
rendered twice, so the two files always say the same thing.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np

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


def _blocks(ctx) -> list[tuple]:
    from taskonomy_tf.taxonomy import load_table
    from taskonomy_tf.viz import affinity_matrix, display_name

    cfg, res, out = ctx.config, ctx.results, ctx.out
    tax = res["taxonomy"]
    aff = load_table(out / tax["tables"]["affinities"])
    rows = json.loads((out / tax["sweep"]).read_text())
    chosen = json.loads((out / tax["taxonomy"]).read_text())
    figs = res["figures"]["figures"]
    b = [("h1", "Task taxonomy report"),
         ("p", f"Data: {res['data']['source']}. Tasks ({len(cfg.tasks)}): "
               f"{', '.join(display_name(t) for t in cfg.tasks)}. Networks at {cfg.image_size} px, "
               f"{cfg.train_steps} steps each; transfers trained on {cfg.transfer_images} images of "
               f"the {res['transfers']['transfer_split']!r} split, {cfg.transfer_steps} steps, "
               f"evaluated image by image on 'test'; max order {cfg.max_order}.")]
    b += [("h2", "Task affinities"),
          ("p", "Each cell: how well a frozen source network's representation transfers to a "
                "target (AHP affinity from per-image win rates; higher = better transfer). "
                "Left: each transfer's win rate against the target's own network, before "
                "AHP. Grey: not run (a task's own representation)."),
          ("img", figs["heatmap"], "affinity heatmap")]
    means = tax.get("cluster_means", {})
    if "3d->3d" in means and "2d->3d" in means:
        b.append(("p", f"Structure check: mean affinity from 3D sources into 3D targets "
                       f"{means['3d->3d']:.4f}, from 2D sources into 3D targets "
                       f"{means['2d->3d']:.4f} (ratio {means['3d->3d'] / means['2d->3d']:.2f})."))
    beaten = tax.get("random_beats_every_source") or []
    if beaten:
        b.append(("p", "The untrained (random) encoder transfers better than every trained "
                       "source into: " + ", ".join(display_name(t) for t in beaten) + ". Its "
                       "codes keep generic image information that briefly trained task "
                       "networks discard; longer training (--train-steps) usually changes this. "
                       "The random encoder is a reference and never a supervised task here."))
    sources, targets, m = affinity_matrix(aff)
    b.append(("table", ["source \\ target"] + [display_name(t) for t in targets],
              [[display_name(s)] + [_fmt(v) for v in row] for s, row in zip(sources, m)]))
    b += [("img", figs["heatmap_clustered"], "clustered heatmap"),
          ("h2", f"The taxonomy at budget {cfg.chosen_budget:g}"),
          ("p", f"Supervised: {', '.join(display_name(r) for r in chosen['roots'])}; "
                f"objective {chosen['objective']:.4f} ({chosen['status']})."),
          ("img", figs["graph"], "taxonomy graph")]
    boot = json.loads((out / tax["bootstrap"]).read_text())
    key = next(iter(boot["roots"]), None)
    if key is not None:
        roots = boot["roots"][key]
        transfers = boot["transfers"][key]
        stable = [t for t, share in transfers.items() if share >= 0.9]
        b += [("h3", "How stable is this choice?"),
              ("p", f"Over {boot['resamples']} bootstrap resamples of the test images: "
                    "supervised in " + ", ".join(f"{display_name(t)} {v:.0%}"
                                                 for t, v in roots.items()) + ". "
                    + (f"{len(stable)} transfer(s) chosen in at least 90% of resamples; "
                       if stable else "No transfer is chosen in 90% of resamples; ")
                    + "the others change with the test images."),
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
    b += [("h2", "Task networks"),
          ("table", ["task", "val loss untrained", "val loss trained", "steps"],
           [[display_name(t), _fmt(v["untrained_val_loss"]), _fmt(v["val_loss"]),
             _fmt(v["steps"])] for t, v in res["train"]["metrics"].items()])]
    if "agreement" in tax:
        agree = json.loads((out / tax["agreement"]).read_text())
        if agree:
            rho = np.mean([v["spearman"] for v in agree.values()])
            b += [("h2", "Agreement with the published affinities"),
                  ("p", f"Spearman correlation of the source ranking per target (mean "
                        f"{rho:.2f} over {len(agree)} targets)."),
                  ("table", ["target", "Spearman", "shared sources", "same best source"],
                   [[display_name(t), f"{v['spearman']:.2f}", v["sources"],
                     "yes" if v["top1_agrees"] else "no"] for t, v in agree.items()])]
    b += [("h2", "What ran"),
          ("table", ["stage", "seconds"],
           [[s, _fmt(res[s]["seconds"], 4)] for s in STAGE_NAMES if s in res]),
          ("p", f"{res['transfers']['jobs']} transfer jobs ({res['transfers']['job_seconds']:.0f} "
                "s of job time). A bigger run (more tasks, 128 px, longer training, "
                "--max-order 2 or more) gives sharper affinities at proportionally more time; "
                "see docs/results.md.")]
    return b


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
        path = Path(ctx.out) / name
        tmp = path.with_name(f".{name}.tmp-{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)
    return {"report": "report.md", "html": "report.html"}
