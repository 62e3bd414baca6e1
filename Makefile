# segen-jax: `make lab` opens the course, `make test` runs every test. Both create .venv first.
# The exact versions installed are those of constraints.txt (what CI tests).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.segen-installed
PIP_VERSION := 26.3
PORT   ?= 8888

.PHONY: lab test bench venv clean

# Install (again) whenever the package definition or the pins change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==$(PIP_VERSION)"
	$(PY) -m pip install --quiet --constraint constraints.txt --editable ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name segen-jax --display-name "Python (segen-jax)"
	touch $(STAMP)

venv: $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --port=$(PORT) $(if $(filter 0,$(shell id -u)),--allow-root)

# Library tests, then every notebook re-run by nbval and compared with its stored outputs.
test: $(STAMP)
	$(PY) -m pytest tests notebooks --nbval --nbval-current-env \
		--nbval-sanitize-with notebooks/nbval_sanitize.cfg --durations=10

# Speed against references in one process (PyTorch CPU is installed for this only).
bench: $(STAMP)
	$(PY) -m pip install --quiet -r benchmarks/requirements.txt
	$(PY) -m benchmarks.train_step --model classifier --torch-compile --save
	$(PY) -m benchmarks.train_step --model tinyfcn --torch-compile --save
	$(PY) -m benchmarks.train_step --model tinyfcn --batch 32 --torch-compile --save
	$(PY) -m benchmarks.train_step --model fcn8s --torch-compile --save
	$(PY) -m benchmarks.train_step --model fcn8s --batch 32 --torch-compile --save
	$(PY) -m benchmarks.train_step --model deeplabv3 --torch-compile --save
	$(PY) -m benchmarks.train_step --model deeplabv3plus --torch-compile --save
	$(PY) -m benchmarks.train_step --model deeplabv3plus --batch 32 --torch-compile --save
	$(PY) -m benchmarks.gan_step --torch-compile --save
	$(PY) -m benchmarks.vae_step --torch-compile --save
	$(PY) -m benchmarks.table --write
	$(PY) -m benchmarks.xla_cpu_options
	$(PY) -m benchmarks.scan_vs_loop
	$(PY) -m benchmarks.step_variants
	$(PY) -m benchmarks.classifier_vs_torch
	$(PY) -m benchmarks.conv
	$(PY) -m benchmarks.pool
	$(PY) -m benchmarks.fcn_vs_torch

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
