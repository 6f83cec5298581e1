"""An interrupted run resumes to the same bytes. Its own file, beside the end-to-end run of test_workflow.py, so
that a parallel `make test` runs the two at once."""
import os
import signal
import subprocess
import time
from pathlib import Path

from tinydag import command, make_workdir, result_bytes, snakemake

# the resumed run: one model's Squares activation stores (canonical and shifted layouts) and the probes that read
# them, killed while a store is half written (`StoreWriter`'s temporary file exists): the resume must redo it
TARGETS = ("results/probes/tiny/squares.parquet", "results/probes/tiny/squares_units.parquet")


def test_resume_after_kill_is_byte_identical(tmp_path: Path):
    """kill -9 of the whole run while an activation store is being written, then the README's two commands
    (--unlock, --rerun-incomplete): the stimulus lists, stores and probe tables equal an uninterrupted run's,
    byte for byte."""
    reference = make_workdir(tmp_path / "uninterrupted")
    out = snakemake(reference, *TARGETS)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]

    wd = make_workdir(tmp_path / "killed")
    stores = wd / "results/activations/tiny"
    proc = subprocess.Popen(command(wd, *TARGETS), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline, partial = time.monotonic() + 600, []
    try:
        while time.monotonic() < deadline and proc.poll() is None and not partial:
            partial = list(stores.glob(".squares*.safetensors.*")) if stores.is_dir() else []
            time.sleep(0.01)
        assert proc.poll() is None and partial, "the run ended before a store was half written"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (wd / TARGETS[0]).exists()
    out = snakemake(wd, *TARGETS)
    text = out.stdout + out.stderr
    # as the README says: Snakemake names the lock or the incomplete outputs, whichever it checks first
    assert out.returncode != 0 and ("locked" in text or "--rerun-incomplete" in text), text[-3000:]
    out = snakemake(wd, "--unlock")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    out = snakemake(wd, *TARGETS, "--rerun-incomplete")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    resumed, uninterrupted = result_bytes(wd), result_bytes(reference)
    assert set(TARGETS) | {"results/activations/tiny/squares.safetensors",
                           "results/activations/tiny/squares_shifted.safetensors",
                           "results/stimuli/tiny/squares_shifted/items.parquet"} <= set(resumed)
    assert set(resumed) == set(uninterrupted)
    assert [f for f in resumed if resumed[f] != uninterrupted[f]] == []
    assert not list(stores.glob(".squares*.safetensors.*")), "the killed writer's temporary file was left behind"
