"""The evidence behind claim 3's fixed-cell shares, in nats, on a finished default run: for each model and
(setting, orientation), the probe claim 3 decides with (fitted on position-centred canonical + shifted object
tokens, `probing.analyse_site`'s three splits) and its fixed-cell pairs (`probing.follow_pairs`): the share of
pairs whose evidence log p(relative) - log p(absolute) is higher at the background conflict token than at its
cell in the triple's other layout, the mean and median of that shift, the same probe's evidence gap on the
held-out object tokens (mean evidence for r over a on objects of slot r minus on objects of slot a), and the
shift as a fraction of that gap. A share counts a shift of a thousandth of a nat as fully as one of several
nats; the gap says whether the probe reads any code on the objects at all (README, "Validation", version 9).

    .venv/bin/python scripts/fixed_cell_evidence.py squares organism-dual organism-lm-untrained [...]
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from dualmech import probing as P
from dualmech.sites import LM_INPUT
from dualmech.stimuli import Geometry
from dualmech.store import ActivationStore


def pairs(data: P.ImageSet, group, te, logp):
    """Per fixed-cell pair of images `te` (`probing.fixed_cell_pairs`): the evidence shift log p(r) - log p(a) at
    the conflict token minus at its cell in the other layout, and the pair's r and a."""
    rel, ab = data.labels.strip_label[te], data.labels.absolute[te]
    i, j, t = P.fixed_cell_pairs(group[te], rel, ab)
    r, a = rel[i, t], ab[i, t]
    return logp[i, t, r] - logp[i, t, a] - (logp[j, t, r] - logp[j, t, a]), r, a


def main(setting: str, models: list[str], seeds: int = 3, test_fraction: float = 0.25, C: float = 1.0, seed: int = 0):
    for model in models:
        t0 = pd.read_parquet(f"results/stimuli/{model}/{setting}/items.parquet")
        t1 = pd.read_parquet(f"results/stimuli/{model}/{setting}_shifted/items.parquet")
        s0 = ActivationStore(f"results/activations/{model}/{setting}.safetensors")
        s1 = ActivationStore(f"results/activations/{model}/{setting}_shifted.safetensors")
        geometry = Geometry.of(t0)
        for o in dict.fromkeys(t0["orientation"]):
            data = P.probe_images(setting, geometry, o, (t0, s0), (t1, s1), None).at(LM_INPUT)
            lab, group = data.labels, data.group
            shift, gap = [], []
            for s in range(seeds):
                test = P.split(group, test_fraction, seed, setting, s)
                tr, te = np.flatnonzero(~test), np.flatnonzero(test)
                objects = data.centred(tr, lab.obj >= 0)
                probe = P.fit_tokens(objects, tr, lab.obj, C)
                logp = np.log(np.maximum(P.token_proba(probe, data.centred(tr, lab.background), te), 1e-300))
                d, r, a = pairs(data, group, te, logp)
                logo = np.log(np.maximum(P.token_proba(probe, objects, te), 1e-300))
                obj = lab.obj[te]

                def gap_of(x, y):
                    ev = logo[..., x] - logo[..., y]
                    return ev[obj == x].mean() - ev[obj == y].mean()
                shift.append(d)
                gap.append(np.array([gap_of(x, y) for x, y in zip(r, a)]))
            d, g = np.concatenate(shift), np.concatenate(gap)
            print(f"{model:24s} {setting}/{o:10s} pairs {len(d):5d}  share {np.mean((d > 0) + 0.5 * (d == 0)):.3f}  "
                  f"shift mean {d.mean():+.3f} median {np.median(d):+.3f} nats  object gap {g.mean():+.2f} nats  "
                  f"shift / gap {np.mean(d / g):+.3f}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
