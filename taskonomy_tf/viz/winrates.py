"""One target's tournament: how often each candidate beats each other one."""

from __future__ import annotations

import numpy as np

from taskonomy_tf.errors import InputError
from taskonomy_tf.viz.names import display_name


def _label(sources: tuple[str, ...]) -> str:
    return " + ".join(display_name(s) for s in sources)


def winrate_matrix(losses_by_source: dict[tuple[str, ...], np.ndarray], target: str,
                   title: str | None = None):
    """Heatmap of W[i, j] = fraction of test images where candidate i has the
    lower loss than candidate j (ties count half), as in the win rates the
    AHP step uses (reference section 5).

    Args:
        losses_by_source: candidate sources -> per-image losses on the same
            images (averaged over readout replicates).

    Returns:
        A Figure; candidates sorted by their mean win rate, best first.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    from taskonomy_tf.taxonomy.ahp import win_rates

    names = list(losses_by_source)
    if len(names) < 2:
        raise InputError(f"{target}: a tournament needs at least 2 candidates")
    w = win_rates(np.stack([np.asarray(losses_by_source[n], float) for n in names]))
    score = np.array([np.mean(np.delete(w[i], i)) for i in range(len(names))])
    order = np.argsort(-score, kind="stable")
    w = w[np.ix_(order, order)]
    labels = [_label(names[i]) for i in order]
    np.fill_diagonal(w, np.nan)
    side = 0.45 * len(names) + 3
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    sns.heatmap(w, mask=np.isnan(w), vmin=0, vmax=1, cmap="vlag_r", center=0.5, square=True,
                xticklabels=labels, yticklabels=labels, ax=ax, linewidths=0.3,
                annot=len(names) <= 12, fmt=".2f", annot_kws={"fontsize": 7},
                cbar_kws={"label": "win rate of row over column\nhigher = row transfers better"})
    ax.set_xlabel("opponent")
    ax.set_ylabel("candidate")
    ax.tick_params(axis="x", labelrotation=90)
    ax.set_title(title or f"Win rates into {display_name(target)}")
    fig.tight_layout()
    return fig
