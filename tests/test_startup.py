"""Job start-up: the figure and table rules (`localrules`), the stimuli rule and the probes run without importing
torch or transformers."""
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from dualmech.stimuli import Geometry

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "workflow/rules"


def local_rule_scripts() -> dict[str, Path]:
    """{rule: its script} for every rule in the `localrules` list that runs a script."""
    common = (RULES / "common.smk").read_text()
    names = re.search(r"^localrules:\n((?:    \w+,\n)+)", common, re.M).group(1).split()
    text = "\n".join(f.read_text() for f in sorted(RULES.glob("*.smk")))
    scripts = {}
    for name in (n.rstrip(",") for n in names):
        body = re.search(rf"^rule {name}:\n(.*?)(?=^(?:use )?rule |\Z)", text, re.M | re.S)
        script = body and re.search(r'script:\n\s+"\.\./scripts/(\w+\.py)"', body.group(1))
        if script:
            scripts[name] = REPO / "workflow/scripts" / script.group(1)
    return scripts


def dualmech_imports(script: Path) -> list[str]:
    mods = []
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dualmech"):
            mods += [f"{node.module}.{a.name}" if node.module == "dualmech" else node.module for a in node.names]
        elif isinstance(node, ast.Import):
            mods += [a.name for a in node.names if a.name.startswith("dualmech")]
    return mods


def test_figure_table_and_probe_rules_do_not_import_torch():
    """The figure and table rules, the organisms' tables, and the probes (which read activation stores and fit
    scikit-learn probes)."""
    scripts = local_rule_scripts() | {r: REPO / f"workflow/scripts/{r}.py"
                                      for r in ("probes", "validation_organisms", "organisms_table")}
    assert {"fig3", "fig6", "fig4", "table1", "table5", "patching_summary", "backup_layers", "claims",
            "published_vs_regenerated"} <= set(scripts)
    modules = sorted({m for s in scripts.values() for m in dualmech_imports(s)})
    assert {"dualmech.patching_tables", "dualmech.snake", "dualmech.store", "dualmech.probing"} <= set(modules)
    code = ("import importlib, sys\n"
            f"for m in {modules!r}:\n    importlib.import_module(m)\n"
            "print(sorted(m for m in ('torch', 'transformers', 'safetensors') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", f"imported by the figure, table and probe rules: {out.stdout}"


def test_stimuli_rule_renders_from_the_check_report_without_torch(tmp_path):
    """The stimuli rule's script, run as Snakemake runs it, takes the model's canvas from its check report: it
    loads neither torch nor transformers (a model job's start-up), and the table carries that geometry."""
    geometry = dict(grid=7, px_per_token=16, object_tokens=1, gap_tokens=1)      # organism-lm's (config.yaml)
    check = tmp_path / "check.json"
    check.write_text(json.dumps(dict(geometry=Geometry(**geometry).as_dict(), palette="standard", exclude_objects=[])))
    table = tmp_path / "items.parquet"
    code = f"""
import runpy, sys
from snakemake.iocontainers import Namedlist
job = lambda **kw: Namedlist(fromdict=kw)
snakemake = type("Job", (), dict(
    input=job(check={str(check)!r}), output=job(table={str(table)!r}, images={str(tmp_path / "images")!r}),
    log=[{str(tmp_path / "stimuli.log")!r}], wildcards=job(model="m", setting="squares"), rule="stimuli", threads=1,
    config=dict(models=[dict(name="m", path={str(REPO / "models/organism-lm")!r})]),
    params=job(seed=0, directions=["left", "above"], grid_images=90, data={{}}, backgrounds={{}}, shifts="auto")))
runpy.run_path({str(REPO / "workflow/scripts/stimuli.py")!r}, init_globals=dict(snakemake=snakemake))
print(sorted(m for m in ("torch", "transformers") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    log = tmp_path / "stimuli.log"
    assert out.returncode == 0, out.stderr[-2000:] + (log.read_text()[-2000:] if log.exists() else "")
    assert out.stdout.strip() == "[]", f"the stimuli rule imported {out.stdout}"
    items = pd.read_parquet(table)
    assert len(items) == 240 and set(items["direction"]) == {"left", "above"}        # 120 triples x 2 directions
    assert Geometry.of(items) == Geometry(**geometry)


def test_a_job_leaves_the_collector_nothing_to_sweep_at_exit():
    """`snake.start` freezes, at exit, every object still alive (the imports and what the job made): interpreter
    shutdown's full collections over torch's and transformers' objects cost a model job over a second. During
    the job nothing is frozen (frozen imports made a plain patching sweep slower). A failing job still exits
    non-zero."""
    code = """
import atexit, gc, sys
atexit.register(lambda: print("exit", len(gc.get_objects()), gc.get_freeze_count()))   # runs after start's
import pandas
from dualmech import snake
job = type("Job", (), dict(log=[], threads=1, rule="r"))
snake.start(job)
kept = [[] for _ in range(1000)]
print("job", len(gc.get_objects()), gc.get_freeze_count())
if sys.argv[1] == "fail":
    raise RuntimeError("the job failed")
"""
    out = subprocess.run([sys.executable, "-c", code, "ok"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    job, exit_ = (list(map(int, line.split()[1:])) for line in out.stdout.splitlines())
    assert job[0] > 10_000 and job[1] == 0                                  # during the job: nothing frozen
    assert exit_[0] == 0 and exit_[1] > job[0] - 100                        # at exit: everything
    failed = subprocess.run([sys.executable, "-c", code, "fail"], capture_output=True, text=True)
    assert failed.returncode == 1 and "the job failed" in failed.stderr
