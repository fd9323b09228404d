"""What a readout job holds in memory, and the budget it must fit in.

A job (one target's candidates, every replicate) holds its arrays (the
training and test codes, labels, weights and images) whatever its heads,
then trains its heads in programs of as many as the budget leaves room for
(``runner.run_candidates``). Before that it fits the target's constant
prior, whose work arrays are bounded (``models.constant.constant_bytes``).
``job_plan`` puts the three together from shapes alone, for a dry run.
"""

from __future__ import annotations

import math

import numpy as np

from taskonomy_tf.models.constant import constant_bytes
from taskonomy_tf.models.decoders import PRESETS
from taskonomy_tf.models.encoders import REPRESENTATION_CHANNELS, code_stride
from taskonomy_tf.models.losses import INDEX_LABEL_LOSSES, PAIRWISE_LOSSES, SEGMENT_PIXELS
from taskonomy_tf.tasks import TaskSpec, get_task
from taskonomy_tf.taxonomy.table import PIXELS
from taskonomy_tf.transfer.readout import ReadoutArrays, fc_parameters
from taskonomy_tf.transfer.scoring import SCORE_BYTES, point_count, uses_points

GB = 2**30
# What one program costs whatever its heads: its traced functions, the
# runtime's buffers for them. Measured (2-core x86_64, TF 2.21): a program
# of one 32 px segmentation head grew the process by 240-290 MB, of which
# about 35 MB its arrays and 50 MB the head.
PROGRAM_BYTES = 192 * 2**20


def head_step_bytes(target: str | TaskSpec, image_size: int, batch_size: int) -> int:
    """Estimated memory (bytes) one head adds to a fused training step or
    to scoring a batch of 64 test images.

    About 16 float32 copies of the batch's outputs (the prediction, the
    pixel shuffle, their gradients and the optimizer's work, the scoring's
    copies). A target whose loss samples pixels (the segmentation metric)
    is predicted at its P = ``SEGMENT_PIXELS`` pixels only
    (``scoring.uses_points``): about 5 float32 copies of each pixel's
    prediction and features (C + w values, w the decoder's width: the
    features, their slots in ``models.group_matmul`` and the gradients)
    and 3 of the (P, P) pair matrices per image (the loss's derivative kept
    from the forward pass, its scaled copy and a transient:
    ``losses.segment_points``). Calibration (2-core x86_64, TF 2.21,
    December 5): 3, 6 and 12 heads of a 32 px segmentation target at batch
    16 in one program grew the process by 160, 223 and 355 MB: 22 MB a
    head, 25 MB estimated. A vector target's head adds its fully connected
    weights (:func:`fc_parameters`).
    """
    spec = get_task(target)
    fc = 32 * fc_parameters(spec, image_size)
    if uses_points(spec):
        width = PRESETS["small"]["convs"][-1]
        outputs = point_count(spec, image_size) * (spec.channels + width)
        pairs = SEGMENT_PIXELS ** 2 if spec.loss in PAIRWISE_LOSSES else 0
        return 4 * batch_size * (5 * outputs + 3 * pairs) + fc
    return 4 * batch_size * 16 * int(np.prod(spec.output_shape(image_size))) + fc


def arrays_bytes(train: ReadoutArrays, test: ReadoutArrays) -> int:
    """Memory (bytes) a readout job holds whatever its heads: the training
    arrays three times (the arrays, their packed targets, the ``tf.constant``
    copies the batches are gathered from), the test arrays, one scoring
    batch (its predictions and the graph's copies of them, bounded by
    ``SCORE_BYTES``) and a program's own cost (``PROGRAM_BYTES``)."""
    def size(a: ReadoutArrays) -> int:
        return sum(x.nbytes for x in (a.codes, a.y, a.w, a.images) if x is not None)

    return 3 * size(train) + size(test) + SCORE_BYTES + PROGRAM_BYTES


def heads_per_program(budget: int, fixed: int, per_head: int) -> int:
    """Heads that fit in one program: what the budget leaves after the job's
    fixed arrays, over each head's step memory (at least one)."""
    return max(1, (budget - fixed) // per_head)


# where a Linux container's memory limit is (cgroup v2, then v1), seen from
# inside it (a container's own cgroup is mounted at the root)
CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_LIMITS = (f"{CGROUP_ROOT}/memory.max", f"{CGROUP_ROOT}/memory/memory.limit_in_bytes")
# cgroup v1 writes "no limit" as the largest page count in bytes (2^63 - 4096)
UNLIMITED = 1 << 62


def cgroup_files(proc: str = "/proc/self/cgroup", root: str = CGROUP_ROOT) -> tuple[str, ...]:
    """The limit files of this process's own cgroup and of each of its
    parents (a job's cgroup under SLURM or a systemd slice, which a process
    outside a container sees under its path), then the root's
    (``CGROUP_LIMITS``): v2 ``memory.max``, v1 ``memory.limit_in_bytes``."""
    files = []
    try:
        lines = open(proc).read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":
            base, name = root, "memory.max"
        elif "memory" in controllers.split(","):
            base, name = f"{root}/memory", "memory.limit_in_bytes"
        else:
            continue
        parts = [p for p in path.strip().split("/") if p]
        files += [f"{base}/{'/'.join(parts[:i])}/{name}".replace("//", "/")
                  for i in range(len(parts), 0, -1)]
    return tuple(dict.fromkeys(files + list(CGROUP_LIMITS)))


def cgroup_limit(paths=None) -> int | None:
    """The tightest memory limit (bytes) among ``paths`` (default:
    ``cgroup_files()``); ``None`` when none sets one ("max", or no cgroup)."""
    limits = []
    for path in cgroup_files() if paths is None else paths:
        try:
            text = open(path).read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < UNLIMITED:
            limits.append(int(text))
    return min(limits) if limits else None


def physical_memory() -> int | None:
    """The memory this process may use, in bytes: the machine's, or its
    container's limit (cgroup) where that is lower (``None`` where the OS
    does not say)."""
    import os

    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        total = None
    limit = cgroup_limit()
    if limit is None:
        return total
    return limit if total is None else min(total, limit)


def memory_budget(workers: int = 1) -> int | None:
    """The readouts' default memory budget (bytes): half of this machine's
    memory (or of its container's limit), shared by ``workers`` jobs side
    by side (``None`` where the OS does not say)."""
    total = physical_memory()
    return total // (2 * workers) if total else None


def example_bytes(spec: TaskSpec, image_size: int, sources: int, pixels: bool) -> dict:
    """Bytes per transfer example (float32): its codes (``sources`` sources'
    of every view), its label and weight, its images (when the ``pixels``
    baseline is trained)."""
    out = spec.output_shape(image_size)
    label = (*out[:-1], 1) if spec.loss in INDEX_LABEL_LOSSES else out
    side = image_size // code_stride(image_size)
    weight = out[:-1] if spec.is_dense else (1,)
    return {"codes": 4 * sources * spec.views * side * side * REPRESENTATION_CHANNELS,
            "label": 4 * int(np.prod(label)), "weight": 4 * int(np.prod(weight)),
            "images": 4 * spec.views * image_size * image_size * 3 if pixels else 0,
            "label_shape": label}


def job_plan(target: str, candidates: list[tuple[str, ...]], n_train: int, n_test: int,
             image_size: int, seeds: int, batch_size: int, budget: int | None) -> dict:
    """The estimated memory of one readout job (bytes, from shapes alone).

    ``prior``: the labels, weights and images of both splits and the
    constant prior's work (the job's first phase); ``arrays``: what the readout
    phase holds whatever its heads (``arrays_bytes``); ``per_head``:
    ``head_step_bytes``; ``peak``: the larger phase, with the most heads
    one program gets under ``budget`` (all of them without one).
    """
    spec = get_task(target)
    sources = len({s for c in candidates for s in c if s != PIXELS})
    pixels = any(c == (PIXELS,) for c in candidates)
    per = example_bytes(spec, image_size, sources, pixels)
    sample = per["codes"] + per["label"] + per["weight"] + per["images"]
    # labels, weights and images are read first, the weights normalised once
    read = (sample - per["codes"]) * (n_train + n_test) + per["weight"] * n_train
    prior = read + constant_bytes(spec.loss, n_train, per["label_shape"], spec.channels)
    arrays = 3 * n_train * sample + n_test * sample + SCORE_BYTES + PROGRAM_BYTES
    per_head = head_step_bytes(spec, image_size, min(batch_size, n_train))
    heads = len(candidates) * seeds
    fits = min(heads, heads_per_program(budget, arrays, per_head)) if budget else heads
    return {"target": spec.name, "heads": heads, "train_images": n_train,
            "test_images": n_test, "prior": prior, "arrays": arrays, "per_head": per_head,
            "heads_per_program": fits, "programs": math.ceil(heads / fits),
            "peak": max(prior, arrays + fits * per_head)}


def experiment_plan(exp, budget: int | None = None) -> dict:
    """Every first-order job of an experiment (``taskonomy_tf.config``),
    estimated from shapes (``job_plan``), the largest peak first; the
    transfer and test image counts from the records' manifest where there
    is one, else ``transfers.images`` for both (``assumed`` says which).
    ``budget``: each job's (default: this machine's, shared by
    ``transfers.workers``). Sizes in GiB."""
    from taskonomy_tf.data.available import expand
    from taskonomy_tf.data.records import manifest_records
    from taskonomy_tf.transfer.grid import first_order_candidates, targets_of

    t = exp.transfers
    tasks = expand(exp.tasks)
    assumed = []
    n_train = manifest_records(exp.data.path, t.split)
    n_train = min(n_train, t.images) if n_train and t.images else n_train or t.images
    n_test = manifest_records(exp.data.path, "test")
    if n_test is None:
        n_test, assumed = n_train, ["test_images"]
    if not n_train:
        return {"jobs": [], "why": f"transfers.images is not set and {exp.data.path!r} has "
                                   "no manifest to count its images"}
    budget = budget if budget is not None else memory_budget(t.workers)
    own = [(name.partition("=")[0],) for name in t.sources]
    jobs = [job_plan(target, first_order_candidates(target, tasks) + own, n_train, n_test,
                     exp.data.image_size, t.seeds, t.batch_size, budget)
            for target in targets_of(tasks)]
    jobs.sort(key=lambda j: -j["peak"])
    size = ("prior", "arrays", "per_head", "peak")
    return {"budget_gib": round(budget / GB, 2) if budget else None, "assumed": assumed,
            "jobs": [{k: round(v / GB, 3) if k in size else v for k, v in j.items()}
                     for j in jobs]}


def print_plan(exp) -> None:
    """A dry run's output: the resolved experiment and its jobs' estimated
    memory as one JSON object on stdout, and on stderr one line per job whose
    peak exceeds its budget."""
    import json
    import sys

    plan = experiment_plan(exp)
    print(json.dumps({"experiment": exp.to_dict(), "memory": plan}, indent=1))
    budget = plan.get("budget_gib")
    for job in plan["jobs"]:
        if budget is not None and job["peak"] > budget:
            print(f"warning: the {job['target']} job needs about {job['peak']:.1f} GiB, above "
                  f"its budget of {budget:.1f} GiB (transfers.workers jobs share half of this "
                  "machine's memory); fewer transfers.images or a bigger machine",
                  file=sys.stderr)
