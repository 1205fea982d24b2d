# Task runner: thin wrappers around pyinfra, pytest, molecule and the gpuaas command.
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)

.PHONY: help local test test-local-lane test-shapes unit hosts molecule validate render docs bench down

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

$(VENV)/.installed: pyproject.toml
	@python3 -m venv --help >/dev/null 2>&1 || { echo "python3 with venv is needed: apt-get install -y python3-venv"; exit 1; }
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

local: $(VENV)/.installed  ## bring up the local environment (two systemd containers, reached over SSH) and converge it
	gpuaas local up
	pyinfra -y inventories/local.py deploys/site.py
	@printf '\nThe local environment is converged. Next:\n'
	@printf '  . .venv/bin/activate                                 put pyinfra and gpuaas on PATH\n'
	@printf '  pyinfra -y inventories/local.py deploys/site.py      re-converge: zero changes\n'
	@printf '  ssh -F .secrets/local/ssh/config local-server        log in as the operator account\n'
	@printf '  gpuaas local up --shape staging                      hosts shaped like staging, beside these\n'
	@printf '  make test                                            the whole test suite\n'
	@printf '  make down                                            remove the local hosts\n'

test: $(VENV)/.installed  ## the whole test suite: lint, pytest (unit, host and every profile's shape), molecule
	ruff check .
	ruff format --check .
	gpuaas local up --replace
	$(MAKE) --no-print-directory -j2 --output-sync=target test-local-lane test-shapes

# The two halves of `make test`, run side by side: they share no host. The local lane's containers
# carry its host tests, then the molecule scenarios; the other half's tests (marked `apart`) bring up
# hosts of their own, such as each shipped profile's shape, one at a time.
test-local-lane:
	GPUAAS_HOST_TESTS=required pytest --durations=15 -m "hosts and not apart"
	molecule test -s default
	molecule test -s backup
	molecule test -s demo-reset
	molecule test -s cluster
	molecule test -s gpu

test-shapes:
	GPUAAS_HOST_TESTS=required pytest --durations=10 -m "not hosts or apart" -p no:cacheprovider

unit: $(VENV)/.installed  ## unit tests only (no Docker; installs the programs they use, such as age)
	gpuaas local setup --tools
	pytest -m "not hosts"

molecule: $(VENV)/.installed  ## molecule scenarios default (site and data services), backup, demo-reset, cluster and gpu
	gpuaas local setup
	molecule test -s default
	molecule test -s backup
	molecule test -s demo-reset
	molecule test -s cluster
	molecule test -s gpu

validate: $(VENV)/.installed  ## validate every environment profile
	gpuaas validate

render: $(VENV)/.installed  ## render every environment under build/
	@for env in local dev demo staging prod; do gpuaas render $$env || exit 1; done

docs: $(VENV)/.installed  ## regenerate the role READMEs' variable tables
	gpuaas docs

bench: $(VENV)/.installed  ## benchmarks (bench/results/*.json and *.md)
	python bench/converge.py
	python bench/data.py
	python bench/backup.py
	python bench/reset.py

down: $(VENV)/.installed  ## remove the local environment's hosts
	gpuaas local down
