"""The README's result figures (docs/results/*.png): the same plotting functions as the figure rules, drawn as
PNG from the tables of a finished run (`make reproduce` first). Run by `make readme-figures`."""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

from dualmech import plots
from dualmech.plots.patching import patching_cell

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results"
FIG4 = [("organism-dual", "squares"), ("organism-vision", "squares"), ("organism-lm", "squares")]
PATCHING = [("7", "organism-dual", "squares", "patching"), ("9", "organism-dual", "squares", "ablation")]


def main() -> None:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    needed = [ROOT / f"results/probes/{m}/{s}_heatmaps.npz" for m, s in FIG4] + \
             [ROOT / f"results/{d}/{m}/{s}/criss_cross_curves.parquet" for _, m, s, d in PATCHING]
    missing = [str(p.relative_to(ROOT)) for p in needed if not p.exists()]
    if missing:
        sys.exit("missing results (run `make reproduce` first): " + ", ".join(missing))
    OUT.mkdir(parents=True, exist_ok=True)
    for model, setting in FIG4:
        meta, arrays = plots.load_heatmaps(ROOT / f"results/probes/{model}/{setting}_heatmaps.npz")
        plots.fig4_heatmaps(meta, arrays, OUT / f"fig4_{model}_{setting}.png",
                            f"Fig 4 \u2014 position probes, {model}, {setting}")
    for fig, model, setting, stage in PATCHING:
        d = ROOT / f"results/{stage}/{model}/{setting}"
        patching_cell(fig, model, setting, d / "pairs_criss_cross.parquet", d / "criss_cross_curves.parquet",
                      d / "criss_cross_stats.parquet", cfg["directions"], cfg["patching"]["min_pairs"],
                      OUT / f"fig{fig}_{model}_{setting}.png")
    print("\n".join(sorted(str(p.relative_to(ROOT)) for p in OUT.glob("*.png"))))


if __name__ == "__main__":
    main()
