"""Position probes of one model on one setting: every orientation x site, metrics + Fig 4 heat maps."""
import io
import json
import time

import numpy as np
import pandas as pd

from dualmech import probing, snake
from dualmech.store import ActivationStore
from dualmech.stimuli import Geometry
from dualmech.tables import atomic_write

log = snake.start(snakemake)
start = time.perf_counter()
model, setting = snakemake.wildcards.model, snakemake.wildcards.setting
entry = next(m for m in snakemake.config["models"] if m["name"] == model)
sets = [(pd.read_parquet(t), ActivationStore(s)) for t, s in zip(snakemake.input.tables, snakemake.input.stores)]
table, store = sets[0]
geometry = Geometry.of(table)       # the canvas the stimuli rule rendered (no model code to load)
if setting.startswith("grid"):
    canonical, shifted = {o: (table, store) for o in ("horizontal", "vertical")}, {}
else:
    canonical = {o: (table, store) for o in dict.fromkeys(table["orientation"])}
    shifted = {}
    if len(sets) > 1 and len(sets[1][0]):
        s_table, s_store = sets[1]
        shifted = {o: (s_table, s_store) for o in dict.fromkeys(s_table["orientation"]) if o in canonical}
metrics, arrays, units = probing.probe_setting(setting, geometry, canonical, shifted, snakemake.params.probing,
                                               snakemake.params.seed, log)
metrics.insert(0, "model", model)
metrics.insert(1, "twin_of", entry.get("twin_of") or "")
atomic_write(snakemake.output.metrics, metrics.to_parquet(index=False))
atomic_write(snakemake.output.units, units.assign(model=model).to_parquet(index=False))  # the control gate's units
k = int(table["k"].iloc[0]) if setting.startswith("grid") else 3
meta = dict(model=model, setting=setting, sites=store.sites(), orientations=list(canonical), grid=geometry.grid,
            classes={o: probing.class_names(o, k) for o in canonical},
            acc={f"{r.orientation}/{r.site}": r.acc for r in metrics.itertuples()})
buf = io.BytesIO()
np.savez_compressed(buf, meta=np.array(json.dumps(meta)), **arrays)
atomic_write(snakemake.output.heatmaps, buf.getvalue())
log.info("%d rows (%d orientations x %d sites) in %.1f s", len(metrics), len(canonical), len(store.sites()),
         time.perf_counter() - start)
