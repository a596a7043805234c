# The course in two commands:
#   make lab    set up .venv (first time only) and start JupyterLab on notebooks/
#   make test   set up .venv with the test extras, then run every test (unit, notebooks, browser)
# and, for segmentation_models_pytorch, a second environment (see README, "The smp environment"):
#   make test-smp   set up .venv-smp (torch 2.14.1 + torchvision, smp, timm), then run tests/smp/
# Needs only Python >= 3.10 with venv. Override the interpreter with `make PYTHON=python3.11 ...`.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PORT ?= 8888
# JupyterLab refuses to run as root unless told to; add the flag only when we are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
# Notebook runs: cell timeout in seconds, and the sanitizer for addresses and timings.
NBVAL := --nbval-lax --nbval-current-env --nbval-cell-timeout=900 --nbval-sanitize-with tests/nbval_sanitize.cfg
NOTEBOOK_DIRS := $(wildcard notebooks solutions exercises)
# Lesson 10 ("Use it") needs segmentation_models_pytorch: it runs in the smp environment (make test-smp).
SMP_NOTEBOOKS := notebooks/10_use_it.ipynb
NOT_IN_COURSE_ENV := $(addprefix --ignore=,$(SMP_NOTEBOOKS))

.PHONY: lab lab-smp test test-fast test-unit test-notebooks setup setup-test setup-smp test-smp exercises notebooks sync \
	bench bench-real bench-pretrained clean

$(VENV)/.course: requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(PIP) install --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (unet course)" >/dev/null
	touch $@

$(VENV)/.test: $(VENV)/.course requirements-test.txt
	$(PIP) install --disable-pip-version-check -r requirements-test.txt -c constraints.txt
	touch $@

setup: $(VENV)/.course
setup-test: $(VENV)/.test

# The smp environment: smp needs torchvision, and torchvision 0.29.1 needs torch 2.14.1 (it does not
# load beside 2.13.0), so it gets its own venv: requirements-smp.txt first (also the constraints file,
# so nothing pulls another torch), then the course requirements without their torch pin, then the package.
VENV_SMP ?= .venv-smp
SMP_BIN := $(VENV_SMP)/bin
SMP_PIP := $(SMP_BIN)/python -m pip

$(VENV_SMP)/.smp: requirements-smp.txt requirements.txt pyproject.toml
	test -x $(SMP_BIN)/python || $(PYTHON) -m venv $(VENV_SMP)
	$(SMP_PIP) install --disable-pip-version-check -r requirements-smp.txt -c requirements-smp.txt
	sed '/^torch==/d' requirements.txt > $(VENV_SMP)/requirements-course.txt
	$(SMP_PIP) install --disable-pip-version-check -r $(VENV_SMP)/requirements-course.txt -c requirements-smp.txt
	$(SMP_PIP) install --disable-pip-version-check --no-deps -e .
	touch $@

setup-smp: $(VENV_SMP)/.smp

# tests/smp/ skip in `make test` (no smp there); here a missing smp or timm fails them. Then lesson 10.
test-smp: $(VENV_SMP)/.smp
	UNET_SMP_REQUIRED=1 $(SMP_BIN)/python -m pytest -q tests/smp
	$(SMP_BIN)/python -m pytest -q $(NBVAL) $(SMP_NOTEBOOKS)

lab: $(VENV)/.course
	$(BIN)/jupyter lab --ip=127.0.0.1 --port=$(PORT) $(ROOT_FLAG) \
		--ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks

# Lesson 10 needs smp: JupyterLab from the smp environment (it has the course requirements too).
lab-smp: $(VENV_SMP)/.smp
	$(SMP_BIN)/jupyter lab --ip=127.0.0.1 --port=$(PORT) $(ROOT_FLAG) \
		--ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks/10_use_it.ipynb

test: $(VENV)/.test
	$(BIN)/python -m pytest -q --doctest-modules $(NBVAL) $(NOT_IN_COURSE_ENV) tests unet_helpers $(NOTEBOOK_DIRS)

# The edit-test loop: unit tests and doctests, without notebooks, the browser and slow tests.
test-fast: $(VENV)/.test
	$(BIN)/python -m pytest -q tests unet_helpers --doctest-modules -m "not browser and not slow"

test-unit: $(VENV)/.test
	$(BIN)/python -m pytest -q tests unet_helpers --doctest-modules -m "not browser"

test-notebooks: $(VENV)/.test
	$(BIN)/python -m pytest -q $(NBVAL) $(NOT_IN_COURSE_ENV) $(NOTEBOOK_DIRS)

# Benchmarks (speed, memory, time to accuracy): see benchmarks/README.md; results in BENCHMARKS.md.
# `make bench` runs every part but the course and rewrites BENCHMARKS.md; `make bench-real` measures
# our U-Net against MONAI's on the real datasets (about an hour on 2 cores).
bench: $(VENV)/.test
	$(BIN)/python benchmarks/run_all.py

bench-real: $(VENV)/.test
	$(BIN)/python benchmarks/bench_real_data.py

# Our U-Net, EncoderUNet and smp's models on the real data, one budget (needs the smp environment).
bench-pretrained: $(VENV_SMP)/.smp
	$(SMP_BIN)/python benchmarks/bench_pretrained.py --threads 1

# Regenerate exercises/ from the marked solution regions in solutions/ (never edit exercises/ by hand).
exercises: $(VENV)/.course
	$(BIN)/python -m unet_helpers.course.build

# Lessons and solutions have MyST Markdown twins in text/ (what a reviewer reads in a diff):
# `make sync` copies the newer side of every pair onto the other (outputs stay in the .ipynb).
sync: $(VENV)/.test
	$(BIN)/jupytext --sync notebooks/*.ipynb solutions/*.ipynb

# Re-execute every lesson in place (they are stored executed so they read well on a repository page).
notebooks: $(VENV)/.test
	$(BIN)/jupytext --sync notebooks/*.ipynb
	$(BIN)/python tools/execute_notebooks.py

clean:
	rm -rf $(VENV) $(VENV_SMP) .pytest_cache .hypothesis

# --- Website and fresh-environment checks (issue 17) ------------------------------------------
# The course's GitHub repository, for the "Open in Colab" links and the site's repository button
# (a placeholder until the course is published): make site COURSE_REPO_URL=https://github.com/ME/COURSE
COURSE_REPO_URL ?= https://github.com/OWNER/unet-course
COURSE_REPO_BRANCH ?= main
export COURSE_REPO_URL COURSE_REPO_BRANCH

.PHONY: site test-package test-latest

$(VENV)/.site: $(VENV)/.course requirements-site.txt
	$(PIP) install --disable-pip-version-check -r requirements-site.txt -c constraints.txt
	touch $@

# requirements-test.txt includes requirements-site.txt (the site's browser test).
$(VENV)/.test: requirements-site.txt

# The website from the stored, executed notebooks (never re-executed) into _build/site.
site: $(VENV)/.site
	$(BIN)/python tools/build_site.py --out _build/site

# Build the wheel and sdist, install the wheel into a clean venv, run the CLI and a short train.
test-package: $(VENV)/.test
	$(BIN)/python tools/test_package.py

# The unit tests against the newest releases the dependency ranges allow (torch pinned).
test-latest: $(VENV)/.test
	$(BIN)/python tools/test_latest.py
