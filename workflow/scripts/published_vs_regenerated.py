"""Published values (config/published.yaml, the configured paper version) beside this run's, with CI flags."""
import pandas as pd

from dualmech import paper, snake, tables

log = snake.start(snakemake)
inp, par = snakemake.input, snakemake.params
published = paper.load_published(inp.published)
known = paper.published_models(published, par.version)


def table(name):
    return pd.read_csv(getattr(inp, name)) if hasattr(inp, name) else None


geometry = {}
for m, check in zip(par.models, inp.checks):
    if m in known:     # Table 4: the canvas geometry of a checkpoint the paper ran, from its check report
        g, _, _ = snake.canvas(check)
        geometry[m] = g.as_dict() | dict(strip_width=par.strip_width if par.strip_width is not None else g.grid // 3)
long = paper.published_vs_regenerated(published, par.version, par.models, table1=table("table1"),
                                      table5=table("table5"), table2=table("table2"), probes=table("probes"),
                                      geometry=geometry, skipped=par.skipped)
tables.write(long, paper.comparison_display(long), snakemake.output.csv[:-4],
             f"Published values (paper {par.version}) beside this run's value and 95% CI; OUTSIDE CI where the "
             "published value falls outside our interval. Models without a published counterpart say so.")
log.info("\n%s", paper.comparison_display(long).to_string(index=False))
