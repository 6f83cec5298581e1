"""Published values (config/published.yaml, the configured paper version) beside this run's, with CI flags."""
import pandas as pd

from dualmech import models, paper, snake, tables

log = snake.start(snakemake)
inp, par = snakemake.input, snakemake.params
published = paper.load_published(inp.published)
known = paper.published_models(published, par.version)


def table(name):
    return pd.read_csv(getattr(inp, name)) if hasattr(inp, name) else None


geometry = {}
for m in par.models:
    if m not in known:
        continue
    try:       # the canvas geometry of a real checkpoint, read from its config (no weights are loaded)
        g, _ = models.describe(snake.model_spec(snakemake, m))
        strip = par.strip_width if par.strip_width is not None else g.grid // 3
        geometry[m] = g.as_dict() | dict(strip_width=strip)
    except Exception as e:  # noqa: BLE001 - reported in the table as "not run"
        log.warning("geometry of %s unavailable: %s", m, e)
long = paper.published_vs_regenerated(published, par.version, par.models, table1=table("table1"),
                                      table5=table("table5"), table2=table("table2"), probes=table("probes"),
                                      geometry=geometry, skipped=par.skipped)
tables.write(long, paper.comparison_display(long), snakemake.output.csv[:-4],
             f"Published values (paper {par.version}) beside this run's value and 95% CI; OUTSIDE CI where the "
             "published value falls outside our interval. Models without a published counterpart say so.")
log.info("\n%s", paper.comparison_display(long).to_string(index=False))
