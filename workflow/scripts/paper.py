"""The regenerated paper: generated macros / tables / figure blocks, then latexmk where TeX is installed."""
import os
import subprocess
from pathlib import Path

import pandas as pd

from dualmech import paper, snake

log = snake.start(snakemake)
inp, par = snakemake.input, snakemake.params
out = Path(snakemake.output.generated)
names = ["table1", "table5", "table2", "probes", "patching_summary", "backup_layers", "validation", "verdicts"]
tables = {n: pd.read_csv(getattr(inp, n)) for n in names if hasattr(inp, n)}
tex = {n: Path(getattr(inp, n)).with_suffix(".tex").read_text() for n in names if hasattr(inp, n)}
organisms = [m["name"] for m in snakemake.config["models"]
             if Path(m["path"]).name.startswith("organism") or m.get("twin_of")]
paper.generate(out, models=par.models, settings=par.settings, directions=par.directions, version=par.version,
               published=paper.load_published(inp.published_values), claims=pd.read_csv(inp.claims),
               comparison=pd.read_csv(inp.published), tables=tables, tex=tex, figures=list(inp.figures),
               organisms=organisms, patching=par.patching, amplification=par.amplification,
               paper_dir=out.parent)
log.info("wrote %s", ", ".join(sorted(p.name for p in out.iterdir())))

if not par.latexmk:
    log.info("No TeX installation (latexmk not found): paper sources written to %s; install TeX Live "
             "(e.g. apt-get install latexmk texlive-latex-recommended) and rerun `snakemake paper` for paper/main.pdf",
             out)
else:
    # sources from the repository's paper/, generated files and figures from this working directory
    env = dict(os.environ, TEXINPUTS=f"{par.paper_sources}//:")
    cmd = [par.latexmk, "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error",
           str(Path(par.paper_sources) / "main.tex")]
    run = subprocess.run(cmd, cwd=out.parent, env=env, capture_output=True, text=True)
    log.info("%s\n%s", " ".join(cmd), run.stdout[-20000:])
    if run.returncode != 0:
        raise RuntimeError(f"latexmk failed (exit {run.returncode}); see {snakemake.log[0]} and "
                           f"{out.parent / 'main.log'}")
    tex_log = (out.parent / "main.log").read_text(errors="replace")
    for line in tex_log.splitlines():
        if "undefined" in line or line.startswith("! "):
            log.warning("LaTeX: %s", line)
    log.info("wrote %s", snakemake.output[0])
