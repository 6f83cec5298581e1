# The two set-up commands of the README, plus helpers. Works on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CORES  ?= all
STAMP  := $(VENV)/.installed
TEST_WORKERS ?= 2

.PHONY: reproduce test install organism organisms lint dry-run report benchmark slurm-test clean reproduce-full readme-figures

reproduce: $(STAMP)          ## the paper's main-text experiments on the three model organisms and their twin
	$(PY) -m snakemake --cores $(CORES)

test: $(STAMP)               ## run the test suite (TEST_WORKERS pytest-xdist workers, 2 by default; 0: one process)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

install: $(STAMP)

# torch: keep an existing installation (GPU machines); otherwise the CPU wheel pinned in envs/cpu.txt.
$(STAMP): pyproject.toml envs/cpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q -r envs/cpu.txt
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

ORGANISMS := organism-lm organism-vision organism-dual
ORGANISM  ?= organism-lm

organisms: $(STAMP)          ## retrain every model organism (stage 1 once, then each organism) and install them under models/
	$(PY) -m snakemake --cores $(CORES) $(ORGANISMS:%=results/models/%) --forcerun pretrain_vision train_organism
	for o in $(ORGANISMS); do rm -rf models/$$o && cp -r results/models/$$o models/$$o; done

organism: $(STAMP)           ## retrain one organism (ORGANISM=organism-lm by default) and install it under models/
	$(PY) -m snakemake --cores $(CORES) results/models/$(ORGANISM) --forcerun train_organism
	rm -rf models/$(ORGANISM) && cp -r results/models/$(ORGANISM) models/$(ORGANISM)

lint: $(STAMP)               ## rule formatting (snakefmt) and Snakemake's own linter
	$(VENV)/bin/snakefmt --check Snakefile workflow/rules
	$(PY) -m snakemake --lint

slurm-test: $(STAMP)         ## the tiny DAG through a single-node SLURM cluster on this machine (root), both GPU profiles
	$(PY) -m pip install -q -e ".[slurm]"
	$(PY) -m pytest -m slurm -s --basetemp=/tmp/dualmech-slurm-test tests/test_slurm.py

dry-run: $(STAMP)
	$(PY) -m snakemake -n

readme-figures: $(STAMP)     ## the README's result figures (docs/results/*.png) from a finished `make reproduce`
	$(PY) scripts/readme_figures.py

report: $(STAMP)             ## HTML report of every figure and table
	$(PY) -m snakemake --report report.html

benchmark: $(STAMP)          ## organism training wall time on this machine
	$(PY) benchmarks/organism_training.py

clean:
	rm -rf results .snakemake report.html

reproduce-full: $(STAMP)     ## the default run plus Table 2, App C.6 (grids) and App C.8 (backgrounds) (config/full.yaml)
	$(PY) -m snakemake --cores $(CORES) --configfile config/full.yaml
