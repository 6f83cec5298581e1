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

    The objects alive now (the imported modules) and at exit are moved out of the garbage collector's sight
    (`gc.freeze`): they live until the process ends, and the collector's full passes over them, during the job
    and at interpreter shutdown, cost a model job over a second (torch + transformers: 1.2 s at exit alone)."""
    gc.freeze()
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
