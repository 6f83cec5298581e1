"""The tiny end-to-end DAG: .test/config.yaml plus the random-weight checkpoint `tiny` it names."""
import shutil
import subprocess
import sys
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


def command(workdir: Path, *args: str) -> list[str]:
    """The `snakemake` command line of the tiny DAG in `workdir`, on 2 cores."""
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--cores", "2", *args]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """`snakemake` on the tiny DAG in `workdir`, with only the rule summary printed."""
    cmd = command(workdir, *args, "--quiet", "rules")      # --quiet takes a list: it must come after targets
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1800)


def result_bytes(wd: Path) -> dict[str, bytes]:
    """Every table, activation store, stimulus list and probe table of a run (figures carry timestamps)."""
    files = [*wd.glob("results/tables/*"), *wd.glob("results/activations/**/*.safetensors"),
             *wd.glob("results/activations/**/*.index.parquet"), *wd.glob("results/stimuli/**/items.parquet"),
             *wd.glob("results/probes/**/*.parquet")]
    return {str(f.relative_to(wd)): f.read_bytes() for f in files if f.is_file()}
