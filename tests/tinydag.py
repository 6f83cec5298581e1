"""The tiny end-to-end DAG: .test/config.yaml plus the random-weight checkpoint `tiny` it names."""
import shutil
from pathlib import Path

from dualmech import organism

REPO = Path(__file__).resolve().parents[1]
TINY_SPEC = organism.OrganismSpec(8, 8, 2, 0, 32, 1, 2, 32, 2, 2, 0.16)


def make_workdir(wd: Path) -> Path:
    """A working directory holding the tiny config (as config.yaml) and the checkpoint it names."""
    wd.mkdir(parents=True, exist_ok=True)
    organism.save(organism.build_model(TINY_SPEC, 0), TINY_SPEC, wd / "tiny", {"note": "random weights"})
    shutil.copy(REPO / ".test/config.yaml", wd / "config.yaml")
    return wd
