"""Glue for workflow/scripts: logging to the rule's log file, threads, model specs, atomic outputs."""
from __future__ import annotations

import atexit
import gc
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import ModelSpec
    from .stimuli import Geometry


def start(snakemake) -> logging.Logger:
    """Send this job's stderr (progress bars, warnings, errors) to its log file; in a job that computes with
    torch (imported before this call), bound its threads and make its kernels deterministic. Figure and table
    jobs never import torch (their start-up is a third of a model job's).

    At exit every object still alive is moved out of the garbage collector's sight (`gc.freeze`): the process
    ends anyway, and the full collections of interpreter shutdown over torch's and transformers' objects cost a
    model job 1.2 s (0.2 s frozen). Only at exit: frozen at the start, the imports made the collector's full
    passes during the job more frequent, and a plain patching sweep 20% slower (benchmarks/patching_sweep.py)."""
    atexit.register(gc.freeze)
    if snakemake.log:
        Path(snakemake.log[0]).parent.mkdir(parents=True, exist_ok=True)
        sys.stderr = open(snakemake.log[0], "w", buffering=1)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    if "torch" in sys.modules:
        from . import runtime
        runtime.setup(snakemake.threads)
    return logging.getLogger(snakemake.rule)


def model_spec(snakemake, name: str | None = None) -> ModelSpec:
    from .models import ModelSpec
    name = name or snakemake.wildcards.model
    entry = next(m for m in snakemake.config["models"] if m["name"] == name)
    return ModelSpec.from_config(entry)


def canvas(check: str | Path) -> tuple[Geometry, str, tuple[str, ...]]:
    """(canvas geometry, palette, objects left out) of a model, from its `check_model` report: the stimulus rules
    read them there, so they start without torch and the model's code (a model job's start-up)."""
    import json

    from .stimuli import Geometry
    report = json.loads(Path(check).read_text())
    if "geometry" not in report:
        raise RuntimeError(f"{check} was written by an older check_model, without the model's canvas: rerun it "
                           "(snakemake --forcerun check_model)")
    return Geometry.from_dict(report["geometry"]), report["palette"], tuple(report["exclude_objects"])
