"""What the taxonomy stage measures beside its tables, from the losses
table's per-target matrices (``taxonomy.losses.loss_matrices``: target ->
(candidates, image ids, replicate names, losses of shape (candidates,
replicates, images))) or from the affinity table."""

from __future__ import annotations

from taskonomy_tf.taxonomy.table import BASELINES, CONSTANT, RANDOM, SELF  # numbers only: light


def _by_name(candidates, rows) -> dict:
    """candidate name ("a" or "a+b") -> its entry of ``rows`` (one per candidate)."""
    return {"+".join(c): r for c, r in zip(candidates, rows)}


def random_checks(aff) -> dict[str, list[str]]:
    """target -> trained first-order sources whose affinity is not above the
    untrained (random) encoder's (a completed pre-filter's estimated pairs
    are not trained: left out)."""
    out = {}
    estimated = aff.meta.get("estimated") or {}
    for t in aff.targets:
        random = aff.get((RANDOM,), t)
        if random is None:
            continue
        below = sorted(r.sources[0] for r in aff.for_target(t)
                       if r.order == 1 and r.sources[0] not in BASELINES and r.value <= random
                       and r.sources[0] not in estimated.get(t, ()))
        if below:
            out[t] = below
    return out


def oracle_agreement(matrices) -> dict:
    """target -> how the sources rank by their networks' codes against by
    their true labels (``oracle:<task>`` readouts): the Spearman of the two
    orders of mean test loss, and each source's loss through its network
    over its loss through its labels (near 1: the network carries what the
    label carries into this target; above 1: it carries less)."""
    import numpy as np

    from taskonomy_tf.taxonomy.table import ORACLE
    from taskonomy_tf.taxonomy.yardsticks import spearman

    out = {}
    for t, (candidates, _, _, m) in matrices.items():
        mean = _by_name(candidates, [float(r.mean()) for r in m])
        pairs = [s for s in mean if ORACLE + s in mean]
        if len(pairs) < 2:
            continue
        net = np.array([mean[s] for s in pairs])
        lab = np.array([mean[ORACLE + s] for s in pairs])
        out[t] = {"spearman": spearman(net, lab),
                  "network_over_labels": {s: mean[s] / max(mean[ORACLE + s], 1e-12)
                                          for s in pairs}}
    return out


def network_win_rates(matrices) -> dict:
    """target -> the share of test images on which its own network (``self``)
    has a lower loss than the constant prediction and than the untrained
    encoder's readout (``random``, averaged over its replicates), ties half:
    the paper's Table 1 measure of whether a network learnt its task."""
    import numpy as np

    out = {}
    for t, (candidates, _, _, m) in matrices.items():
        losses = _by_name(candidates, [r.mean(0) for r in m])
        if SELF not in losses:
            continue
        own = losses[SELF]
        out[t] = {ref: float(np.mean((own < losses[ref]) + 0.5 * (own == losses[ref])))
                  for ref in (CONSTANT, RANDOM) if ref in losses}
    return out


def loss_ratios(matrices) -> dict:
    """target -> candidate -> mean test loss / the constant candidate's (below 1:
    better than the best constant prediction)."""
    out = {}
    for t, (candidates, _, _, m) in matrices.items():
        means = _by_name(candidates, [float(r.mean()) for r in m])
        if means.get(CONSTANT, 0) > 0:
            out[t] = {k: v / means[CONSTANT] for k, v in means.items()}
    return out
