"""The organisms table: each organism's recipe, minutes per training stage and diagnostics, from organism.json."""
import json
from pathlib import Path

from dualmech import organism_tables, snake, tables

log = snake.start(snakemake)
infos = {name: json.loads((Path(path) / "organism.json").read_text())
         for name, path in zip(snakemake.params.organisms, snakemake.input)}
table = organism_tables.organisms_table(infos)
tables.write(table, organism_tables.organisms_display(table), snakemake.output.csv[:-4],
             "Model organisms: accuracy on random canonical items (mean over the 12 setting x direction cells, worst "
             "cell) as trained; with the image tokens' sequence order shuffled per example (what the visual tokens' "
             "content carries: the vision side); with vision-derived ordering ablated (each entity's tokens from its "
             "rendering alone in the middle slot, as in Table 5: what the LM carries from sequence order). "
             "Chance 0.33.")
log.info("\n%s", organism_tables.organisms_display(table).to_string(index=False))
