"""Benchmark: what a `snakemake` call and a job pay before any work, each measured in a fresh process.

- The checkpoint check config.yaml gets at parse time, on every model of config.yaml: from config.json alone
  (`dualmech.families`, what the workflow runs) vs from the transformers config (`models.detect_family`, what
  `check_model` runs; the workflow ran it at parse time before). Both must name the same families.
- `snakemake -n` on the default configuration (the whole parse + DAG).
- A stimuli job's start-up: its imports and the model's canvas read from the model's check report
  (`snake.canvas`, what it does) vs from the model built on `meta` (`models.describe_adapter`, what it did). Both
  must give the same canvas.
- A probes job's start-up: its imports with the canvas geometry read from the stimulus table and the activation
  store read with numpy (`dualmech.store`, what it does) vs with the model built on `meta` for the geometry
  (`models.describe`) and the store read through torch (`dualmech.extraction`), what it did.
Prints the median of `--repeats` runs of each and the ratios.

    .venv/bin/python benchmarks/startup.py [--repeats 3]
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--repeats", type=int, default=3)
args = parser.parse_args()
models = [m for m in yaml.safe_load((REPO / "config.yaml").read_text())["models"]]
entries = repr([(m["name"], str(REPO / m["path"]), m.get("family")) for m in models])

CHECKS = {
    "config.json (families.detect)": (
        "from dualmech.families import detect, read_config\n"
        f"print([detect(n, read_config(n, p), f) for n, p, f in {entries}])"),
    "transformers config (models.detect_family)": (
        "from dualmech.models import ModelSpec, detect_family\n"
        f"print([detect_family(ModelSpec(name=n, path=p, family=f)) for n, p, f in {entries}])"),
}
STIMULI_IMPORTS = ("from dualmech import naturalistic, snake\nfrom dualmech.stimuli import backgrounds, grid_items, "
                   "relation_items\nfrom dualmech.stimuli.shifted import shifted_items\n")
PROBES = {
    "geometry from the stimulus table, numpy store": (
        "import pandas, numpy\nfrom dualmech import probing, snake\nfrom dualmech.store import ActivationStore\n"
        "from dualmech.stimuli import Geometry\nprint('ok')"),
    "model built on meta, store through torch": (
        "import pandas, numpy\nfrom dualmech import models, probing, snake\nfrom dualmech.extraction import "
        f"ActivationStore\nprint(models.describe(models.ModelSpec(name='m', path={str(REPO / models[0]['path'])!r})))"),
}


def timed(cmd: list[str]) -> tuple[float, str]:
    runs, out = [], ""
    for _ in range(args.repeats):
        t = time.perf_counter()
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        runs.append(time.perf_counter() - t)
        if done.returncode:
            sys.exit(f"{cmd[:3]} failed:\n{done.stderr[-2000:]}")
        out = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    return statistics.median(runs), out


def compare(title: str, variants: dict[str, str], check_same_output: bool) -> None:
    print(f"\n{title} (median of {args.repeats} fresh processes)")
    results = {name: timed([sys.executable, "-c", code]) for name, code in variants.items()}
    (new, (t_new, o_new)), (old, (t_old, o_old)) = results.items()
    for name, (t, out) in results.items():
        print(f"  {name:45s} {t:6.2f} s   {out[:70]}")
    if check_same_output:
        assert o_new == o_old, f"the two checks disagree: {o_new} vs {o_old}"
    print(f"  ratio {t_old / t_new:.1f}x")


def stimuli_variants(check: Path) -> dict[str, str]:
    spec = f"models.ModelSpec(name='m', path={str(REPO / models[0]['path'])!r})"
    return {
        "canvas from the check report (snake.canvas)": STIMULI_IMPORTS + f"print(snake.canvas({str(check)!r}))",
        "model built on meta (models.describe_adapter)": (
            STIMULI_IMPORTS + f"from dualmech import models\na = models.describe_adapter({spec})\n"
            "print((a.geometry, a.palette, tuple(a.exclude_objects)))"),
    }


def write_check_report(path: Path) -> Path:
    """The canvas part of the first model's check report, as `check_model` writes it."""
    import json

    from dualmech import checks, models as m
    adapter = m.describe_adapter(m.ModelSpec(name="m", path=str(REPO / models[0]["path"])))
    path.write_text(json.dumps(checks.canvas(adapter)))
    return path


compare(f"checkpoint check of config.yaml's {len(models)} models", CHECKS, check_same_output=True)
t, _ = timed([sys.executable, "-m", "snakemake", "-n", "--quiet", "all"])
print(f"\nsnakemake -n on config.yaml (median of {args.repeats}): {t:.2f} s")
with tempfile.TemporaryDirectory() as tmp:
    compare("a stimuli job's imports and canvas", stimuli_variants(write_check_report(Path(tmp) / "check.json")),
            check_same_output=True)
compare("a probes job's imports", PROBES, check_same_output=False)
