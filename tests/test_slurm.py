"""The tiny DAG through a real SLURM cluster, exactly as the README's "Running on a cluster" says.

Runs only when asked (`make slurm-test`, i.e. `pytest -m slurm`): it needs root, brings up munged + slurmctld +
slurmd on this machine (scripts/slurm_cluster.sh, Debian's slurm-wlm and munge), runs the DAG locally and
through each GPU profile, and stops the daemons it started. Prints wall time, job counts and polling lag.
"""
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tinydag import REPO, make_workdir

pytestmark = pytest.mark.slurm

CLUSTER = REPO / "scripts/slurm_cluster.sh"
MODEL_RULES = {"check_model", "behaviour", "patching_sweeps", "background_sweeps", "ablation", "extract_activations",
               "relation_activations", "amplify"}
SNAKEMAKE = [str(Path(sys.executable).parent / "snakemake"), "-s", str(REPO / "Snakefile")]


@pytest.fixture(scope="module")
def cluster():
    up = subprocess.run([str(CLUSTER), "up"], capture_output=True, text=True)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield
    finally:
        subprocess.run([str(CLUSTER), "down"], check=True)


PROFILES = ("slurm-gpus", "slurm-gres")


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory) -> dict[str, tuple[Path, float, str]]:
    """The tiny DAG locally (one core) and through each profile, all at once: the three runs share this machine's
    two CPUs evenly (the node has two, shared by the two cluster runs), and the test takes one run's time.
    name -> (working directory, wall seconds, log)."""
    commands = {"local": ["--cores", "1"]}
    commands.update({p: ["--workflow-profile", str(REPO / "profiles" / p)] for p in PROFILES})
    started = {}
    for name, args in commands.items():
        wd = make_workdir(tmp_path_factory.mktemp(name))
        log = open(wd / "snakemake.log", "w")
        started[name] = (wd, log, time.monotonic(), subprocess.Popen([*SNAKEMAKE, *args], cwd=wd, stdout=log,
                                                                      stderr=subprocess.STDOUT))
    done, ended, deadline = {}, {}, time.monotonic() + 3 * 3600
    try:
        while len(ended) < len(started) and time.monotonic() < deadline:   # each run's own end time
            for name, (*_, proc) in started.items():
                if name not in ended and proc.poll() is not None:
                    ended[name] = time.monotonic()
            time.sleep(1)
        for name, (wd, log, t0, proc) in started.items():
            rc = proc.wait(timeout=60)
            done[name] = (wd, ended[name] - t0, (wd / "snakemake.log").read_text())
            log.close()
            assert rc == 0, f"{name}:\n" + done[name][2][-4000:]
    finally:
        for *_, proc in started.values():
            if proc.poll() is None:
                proc.terminate()
    return done


def tables(wd: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((wd / "results/tables").iterdir())}


def slurm_jobs(log: str) -> dict[str, str]:
    """SLURM job id -> Snakemake job id, from the submission lines of the log."""
    return {s: j for j, s in re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log)}


def polling_lag(log: str, ended: dict[str, datetime]) -> list[float]:
    """Seconds between each SLURM job's end and Snakemake's "Finished jobid" line for it."""
    finished = {j: datetime.strptime(" ".join(ts.split()), "%a %b %d %H:%M:%S %Y")
                for ts, j in re.findall(r"\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]\s*\nFinished jobid: (\d+)", log)}
    return [(finished[j] - ended[s]).total_seconds() for s, j in slurm_jobs(log).items() if j in finished]


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_runs_the_dag_like_a_local_run(runs, profile):
    local_wd, local_wall, local_log = runs["local"]
    wd, wall, log = runs[profile]
    assert f"workflow specific profile {REPO / 'profiles' / profile}" in log

    assert tables(wd) == tables(local_wd)               # every table byte-identical to the local run
    assert len(tables(wd)) >= 20

    # what each job asked SLURM for: a GPU exactly for the rules that run a model
    shown = subprocess.run(["scontrol", "--oneliner", "show", "job"], capture_output=True, text=True, check=True)
    ours = slurm_jobs(log)
    jobs = {}
    for line in shown.stdout.splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if fields["JobId"] in ours:
            jobs[fields["JobId"]] = fields
    assert jobs and len(jobs) == len(ours)
    assert all(j["JobState"] == "COMPLETED" for j in jobs.values())
    submitted = set()
    for j in jobs.values():
        rule = re.match(r"rule_(\w+?)(_wildcards_.*)?$", j["Comment"]).group(1)
        asks_gpu = "gpu:1" in j.get("TresPerJob", "") + j.get("TresPerNode", "")
        assert asks_gpu == (rule in MODEL_RULES), (rule, j)
        submitted.add(rule)
    assert MODEL_RULES <= submitted

    lag = polling_lag(log, {i: datetime.fromisoformat(j["EndTime"]) for i, j in jobs.items()})
    n_local = len(re.findall(r"Finished jobid", local_log))
    print(f"\n{profile}: {wall:.0f} s wall ({wall / local_wall:.2f}x the local run's {local_wall:.0f} s); "
          f"{len(ours)} SLURM jobs + {len(re.findall('Finished jobid', log)) - len(ours)} local "
          f"(local run: {n_local} jobs); polling lag mean {sum(lag) / len(lag):.1f} s, max {max(lag):.0f} s, "
          f"sum {sum(lag):.0f} s")
