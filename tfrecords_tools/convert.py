"""Raw Taskonomy / Omnidata folders, or a dataset card, -> sharded TFRecords
and a manifest.

    python -m tfrecords_tools.convert --src DIR --out DIR [--domains ...]
        [--split-csv FILE --split train|val|test] [--resize N]
        [--shard-size N] [--workers N] [--strict]

One ``tf.train.Example`` per view with every requested domain (schema in
``taskonomy_tf.data.schema`` and ``docs/data.md``). Shards are named
``<split>-00000-of-000NN.tfrecord`` (split ``all`` without a split file) and
hold whole points, so that the views of a point stay together; beside each,
``<shard>.views.json`` indexes its views for the view-tuple tasks
(``taskonomy_tf.data.view_index``). Re-running
with the same arguments after an interruption writes only the shards that
are missing; different arguments into the same ``--out`` are refused.

A folder with ``dataset.json`` is a dataset card (``tfrecords_tools.card``):
its CSV gives every split, and the records' manifest keeps the card.

Across machines: ``--shard I/N`` writes only the shards whose index is I
modulo N (the same files, byte for byte, as one machine writes) and no
manifest. With a shared ``--out``, a last run without ``--shard`` checks
them and writes the manifest; with one ``--out`` per machine,
``--merge DIR ...`` gathers the parts into ``--out`` (``tfrecords_tools.merge``),
refusing a part of another conversion, a shard written twice or one missing.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from taskonomy_tf.config import parse_shard
from taskonomy_tf.console import quiet_tensorflow, set_verbose
from taskonomy_tf.data import schema
from taskonomy_tf.errors import UserError
from taskonomy_tf.fileio import sha256_file, write_json_atomic
from taskonomy_tf.procs import process_pool
from tfrecords_tools.reader import read_split_csv, scan
from tfrecords_tools.writer import StrictError, write_shard


class ConvertError(UserError, RuntimeError):
    """A conversion that cannot proceed; the message is one line."""


def plan_shards(samples: dict, shard_size: int) -> list[list]:
    """Groups sorted samples into shards of about ``shard_size`` views, whole points only."""
    shards: list[list] = [[]]
    last_point = None
    for key, files in samples.items():
        point = key[:2]
        if len(shards[-1]) >= shard_size and point != last_point:
            shards.append([])
        shards[-1].append([list(key), {d: str(p) for d, p in files.items()}])
        last_point = point
    return [s for s in shards if s]


def _plan_id(args: dict[str, Any], shards: list[list]) -> str:
    h = hashlib.sha256(json.dumps([args, shards], sort_keys=True).encode())
    return h.hexdigest()[:16]


def convert(src: str, out: str, domains: list[str] | None = None,
            split_csv: str | None = None, split: str | None = None,
            resize: int | None = None, shard_size: int = 256, workers: int = 1,
            strict: bool = False, progress: bool = True,
            part: tuple[int, int] | None = None) -> dict[str, Any]:
    """Converts ``src`` into shards under ``out``; returns the manifest (with
    ``part=(I, N)``: writes the I-th of N parts, see the module doc, and
    returns that part's record instead).

    Raises:
        ConvertError: bad arguments, nothing to convert, a conflicting
            earlier conversion in ``out``, or (with ``strict``) a bad file.
    """
    from taskonomy_tf.data.card import is_card

    if is_card(src):  # a dataset card: every split from its CSV
        if domains or split_csv or split or resize or part or strict:
            raise ConvertError("--src is a dataset card: --domains, --split-csv, --split, "
                               "--resize, --shard and --strict do not apply")
        from tfrecords_tools.card import convert_card

        return convert_card(src, out, shard_size, workers, progress)
    if domains:
        unknown = sorted(set(domains) - set(schema.DOMAINS))
        if unknown:
            raise ConvertError(
                f"--domains: unknown {', '.join(unknown)}; "
                f"known: {', '.join(sorted(schema.DOMAINS))}"
            )
        if "rgb" not in domains:
            domains = ["rgb", *domains]
    if (split_csv is None) != (split is None):
        raise ConvertError("--split-csv and --split go together")
    if shard_size < 1 or workers < 1 or (resize is not None and resize < 8):
        raise ConvertError("--shard-size and --workers must be >= 1, --resize >= 8")
    if part is not None and not 0 <= part[0] < part[1]:
        raise ConvertError(f"--shard {part[0]}/{part[1]}: expected 0 <= I < N")
    try:
        found = scan(src, domains)
    except FileNotFoundError as exc:
        raise ConvertError(str(exc)) from None
    samples = found.samples
    if split_csv is not None:
        try:
            keep = read_split_csv(split_csv, split)
        except (OSError, ValueError) as exc:
            raise ConvertError(str(exc)) from None
        samples = {k: v for k, v in samples.items() if k[0] in keep}
    if not samples:
        raise ConvertError(f"--src {src}: no raw samples found (expected <building>/<domain>/"
                           "point_P_view_V_domain_D.ext or the Omnidata layout)")
    wanted = sorted(domains) if domains else sorted(found.domain_counts())
    split_name = split or "all"
    shards = plan_shards(samples, shard_size)
    names = [schema.shard_name(split_name, i, len(shards)) for i in range(len(shards))]
    args = {"src": str(Path(src).resolve()), "domains": wanted, "split": split_name,
            "split_csv": str(split_csv) if split_csv else None, "resize": resize,
            "shard_size": shard_size, "schema_version": schema.SCHEMA_VERSION}
    plan_id = _plan_id(args, shards)

    outdir = Path(out)
    state = outdir / ".convert"
    state.mkdir(parents=True, exist_ok=True)
    plan_path = state / f"plan-{split_name}.json"
    plan = {"plan_id": plan_id, "args": args, "shards": names,
            # what the manifest needs, so that parts can be merged elsewhere
            "layouts": sorted(found.layouts), "ignored": [list(x) for x in found.ignored],
            "buildings": sorted({k[0] for k in samples})}
    if plan_path.exists():
        old = json.loads(plan_path.read_text())
        if old.get("plan_id") != plan_id:
            raise ConvertError(
                f"--out {out} holds a {split_name!r} conversion made with other arguments or "
                "other source files; use a new --out or remove it"
            )
    if not plan_path.exists() or json.loads(plan_path.read_text()) != plan:
        write_json_atomic(plan_path, plan)

    jobs = []
    reports: dict[str, dict] = {}
    for index, (name, shard) in enumerate(zip(names, shards)):
        if part is not None and index % part[1] != part[0]:
            continue  # another machine's
        report_path = state / f"{name}.json"
        if (outdir / name).exists() and report_path.exists():
            reports[name] = json.loads(report_path.read_text())
            continue
        jobs.append({"out": str(outdir), "name": name, "samples": shard,
                     "domains": wanted, "resize": resize, "strict": strict})
    total_views = sum(len(s) for s in shards)
    done_views = sum(r["records"] + len(r["dropped"]) for r in reports.values())
    bar = _progress(total_views, done_views, progress)
    try:
        for report in _run(jobs, workers):
            reports[report["shard"]] = report
            bar.update(report["records"] + len(report["dropped"]))
    except StrictError as exc:
        raise ConvertError(f"--strict: {exc}") from None
    finally:
        bar.close()

    if part is not None:
        record = {"plan_id": plan_id, "split": split_name, "part": list(part),
                  "shards": sorted(reports)}
        write_json_atomic(state / f"part-{split_name}-{part[0]}-of-{part[1]}.json", record)
        return record
    return write_manifest(outdir, plan, reports)


def write_manifest(outdir: Path, plan: dict, reports: dict[str, dict]) -> dict[str, Any]:
    """Adds (or replaces) a split's section of ``manifest.json`` from its plan
    and every shard's report; returns the manifest."""
    section = _manifest(plan, reports, outdir)
    manifest_path = outdir / schema.MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest.update({"schema_version": schema.SCHEMA_VERSION, "created": section.pop("created")})
    manifest.setdefault("splits", {})[plan["args"]["split"]] = section
    write_json_atomic(manifest_path, manifest)
    return manifest


def _progress(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="view", desc="convert",
                disable=not enabled, leave=False)


def _run(jobs: list[dict], workers: int, fn=write_shard):
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            yield fn(job)
        return
    with process_pool(workers, initializer=quiet_tensorflow) as pool:
        futures = [pool.submit(fn, job) for job in jobs]
        try:
            for fut in cf.as_completed(futures):
                yield fut.result()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


def _manifest(plan: dict, reports: dict[str, dict], outdir: Path) -> dict[str, Any]:
    args, names = plan["args"], plan["shards"]
    counts: dict[str, int] = {}
    for r in reports.values():
        for d, n in r["domain_counts"].items():
            counts[d] = counts.get(d, 0) + n
    shards = []
    for name in names:
        r = reports[name]
        if sha256_file(outdir / name) != r["sha256"]:
            raise ConvertError(f"{outdir / name}: checksum differs from its report; remove it "
                               "and re-run to rewrite it")
        shards.append({"name": name, "records": r["records"], "sha256": r["sha256"]})
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": {"path": args["src"], "layouts": plan["layouts"]},
        "split": args["split"],
        "arguments": args,
        "records": sum(s["records"] for s in shards),
        "domains": args["domains"],
        "domain_counts": dict(sorted(counts.items())),
        "missing_domains": [m for n in names for m in reports[n]["missing"]],
        "rejected_files": [x for n in names for x in reports[n]["rejected"]],
        "dropped_samples": [x for n in names for x in reports[n]["dropped"]],
        "ignored_files": plan["ignored"],
        "shards": shards,
        "buildings": plan["buildings"],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tfrecords_tools.convert",
                                description=__doc__.split("\n")[0])
    p.add_argument("--src", help="dataset root (either layout)")
    p.add_argument("--out", required=True, help="output folder for shards and manifest")
    p.add_argument("--domains", nargs="+", help="domains to keep (default: every domain found)")
    p.add_argument("--split-csv", help="official train_val_test_*.csv (id,train,val,test)")
    p.add_argument("--split", choices=["train", "val", "test"], help="split column to keep")
    p.add_argument("--resize", type=int, help="re-encode images at N x N")
    p.add_argument("--shard-size", type=int, default=256, help="views per shard (whole points)")
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--strict", action="store_true", help="fail on the first bad file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--shard", metavar="I/N",
                   help="write the I-th (0-based) of N parts (one per machine); no manifest")
    p.add_argument("--merge", nargs="+", metavar="DIR",
                   help="gather the parts written into these folders into --out")
    p.add_argument("--verbose", action="store_true",
                   help="show TensorFlow's own log lines (hidden by default)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    set_verbose(a.verbose)
    quiet_tensorflow()
    try:
        if a.merge:
            from tfrecords_tools.merge import merge_parts

            m = merge_parts(a.merge, a.out)
        elif not a.src:
            raise ConvertError("--src: required (or --merge DIR ...)")
        else:
            m = convert(a.src, a.out, a.domains, a.split_csv, a.split, a.resize, a.shard_size,
                        a.workers, a.strict, progress=not a.quiet, part=parse_shard(a.shard))
    except (UserError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if a.shard and not a.merge:
        print(f"part {a.shard}: {len(m['shards'])} shard(s) -> {a.out}; run the other parts, "
              "then once without --shard (shared --out) or --merge")
        return 0
    if "card" in m:
        print(f"dataset card {m['card']['name']!r}: " + ", ".join(
            f"{p['records']} {s} sample(s) in {len(p['shards'])} shard(s)"
            for s, p in m["splits"].items()) + f" -> {a.out}")
        return 0
    part = m["splits"][a.split or "all"] if not a.merge else next(iter(m["splits"].values()))
    print(f"{part['records']} views in {len(part['shards'])} shard(s) -> {a.out} "
          f"({len(part['rejected_files'])} rejected, {len(part['ignored_files'])} ignored files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
