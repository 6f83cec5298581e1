"""Claims table: each of the paper's claims tested on every model run, from the result tables."""
import pandas as pd

from dualmech import claims, snake, tables

log = snake.start(snakemake)
inp, par = snakemake.input, snakemake.params


def table(name):
    return pd.read_csv(getattr(inp, name)) if hasattr(inp, name) else None


def per_cell(name):
    files = list(getattr(inp, name)) if hasattr(inp, name) else []
    return {cell: pd.read_parquet(f) for cell, f in zip(map(tuple, par.cells[name]), files)}


def files(name):
    return [pd.read_parquet(f) for f in getattr(inp, name)] if hasattr(inp, name) else []


# the per-item values the control gate pairs a model with its control on
units = [claims.probe_units(pd.concat(u, ignore_index=True), table("probes")) for u in [files("probe_units")] if u]
clean, ablated = files("clean"), files("ablated")
if clean and ablated:
    units.append(claims.ablation_units(pd.concat(clean, ignore_index=True), pd.concat(ablated, ignore_index=True)))
units += [claims.amplification_units(m, t, b, o) for (m, t), b, o in
          zip(map(tuple, par.amp_pairs), files("amp_baseline"), files("amp_outcomes"))]
ev = claims.Evidence(table1=table("table1"), table5=table("table5"), table2=table("table2"), probes=table("probes"),
                     last_token=per_cell("last_token"), criss_cross_stats=per_cell("criss_cross_stats"),
                     criss_cross=per_cell("criss_cross"), ablated_stats=per_cell("ablated_stats"),
                     units=pd.concat(units, ignore_index=True) if units else None)
result = claims.evaluate(ev, par.models, par.settings, par.min_pairs, par.seed, par.testbeds, par.controls)
tables.write(result, claims.display(result, "all"), snakemake.output.csv[:-4],
             "The paper's claims tested on each model run: for each claim and model the summary over settings "
             "(setting 'all'), then every setting. Effect with its 95% CI, p-value of the claim's test (largest "
             f"over the conditions of a conjunction), verdict at alpha = {claims.ALPHA}; a model with a declared "
             f"control (its untrained twin, or `control`) is held to it: {claims.CONTROL_RULE}.")
tables.write(claims.rules(), claims.rules(), snakemake.output.rules_csv[:-4],
             "The verdict rule of every claim (dualmech.claims.CLAIMS).")
log.info("\n%s", claims.display(result).to_string(index=False))
