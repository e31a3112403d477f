# Adversarial Arena. `make play` installs what playing needs and starts the game; `make test` adds the test,
# reference-attack and scale-out libraries, checks PostgreSQL and runs the type checker and the whole suite.
# Both are safe to run again: each step is skipped when it is already done.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYPROJECT_HASH := $(shell sha1sum pyproject.toml | cut -c1-12)
PLAY_STAMP := $(VENV)/.installed-play-$(PYPROJECT_HASH)
TEST_STAMP := $(VENV)/.installed-test-$(PYPROJECT_HASH)
# imagenet: the /cloak and /natural opponents; text: the MiniLM text opponent.
PLAY_EXTRAS := imagenet,text
# dev: pytest, the reference libraries, ruff and mypy; ray: the Ray Serve backend; ml-extra: training the
# scikit-learn opponents. The `attacks` extra (torchattacks) is installed apart, with --no-deps (pyproject says why).
TEST_EXTRAS := $(PLAY_EXTRAS),dev,ray,ml-extra
TEST_POSTGRES_URL := $(or $(ARENA_TEST_POSTGRES_URL),postgresql://postgres@127.0.0.1:5432/test)
DATASET := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
WORDNET := /usr/share/wordnet/data.noun
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
AS_ROOT := $(if $(SUDO),sudo ,)

.PHONY: play install test-install system-deps test-deps postgres typecheck test test-quick lint bench train clean-venv

play: install ## install what playing needs, migrate the database and start the server on http://127.0.0.1:8000
	$(BIN)/arena serve

install: system-deps $(PLAY_STAMP)

test-install: install $(TEST_STAMP)

system-deps: ## Debian packages: the Fashion-MNIST and WordNet data packs and venv support
	@if [ ! -f $(DATASET) ] || [ ! -f $(WORDNET) ] || ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
		$(SUDO) $(APT_GET) update -qq && $(SUDO) $(APT_GET) install -y -qq dataset-fashion-mnist wordnet-base python3-venv; \
	fi

test-deps: system-deps ## Debian's Chromium for the browser tests (Playwright drives it; nothing is downloaded)
	@command -v chromium >/dev/null || { $(SUDO) $(APT_GET) update -qq && $(SUDO) $(APT_GET) install -y -qq chromium; }

postgres: ## the tests' PostgreSQL server must answer (ARENA_TEST_SKIP_POSTGRES=1 skips its tests, outside CI)
	@if [ "$${ARENA_TEST_SKIP_POSTGRES:-}" = 1 ] && [ "$${CI:-}" != true ]; then \
		echo "ARENA_TEST_SKIP_POSTGRES=1: the PostgreSQL tests will be skipped"; \
	elif ! $(PYTHON) -c 'import socket, sys, urllib.parse as u; url = u.urlsplit(sys.argv[1]); socket.create_connection((url.hostname or "127.0.0.1", url.port or 5432), 3)' '$(TEST_POSTGRES_URL)' 2>/dev/null; then \
		if command -v pg_ctlcluster >/dev/null && [ -n "$$(ls /etc/postgresql 2>/dev/null)" ]; then \
			echo "starting the local PostgreSQL cluster"; \
			$(SUDO) pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -n1) main start; \
		else \
			echo "No PostgreSQL server answers at $(TEST_POSTGRES_URL) (ARENA_TEST_POSTGRES_URL)." >&2; \
			echo "Install and start one (Debian): $(AS_ROOT)apt-get install -y postgresql && $(AS_ROOT)pg_ctlcluster --skip-systemctl-redirect \$$(ls /etc/postgresql) main start" >&2; \
			echo "then make the tests' database: $(AS_ROOT)su postgres -c 'createdb test', with trust auth for 127.0.0.1 in pg_hba.conf." >&2; \
			echo "Or skip the PostgreSQL tests on this machine: ARENA_TEST_SKIP_POSTGRES=1 make test" >&2; \
			exit 1; \
		fi; \
	fi

$(PLAY_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[$(PLAY_EXTRAS)]'
	@rm -f $(VENV)/.installed-play-*
	@touch $@

$(TEST_STAMP): $(PLAY_STAMP)
	$(BIN)/pip install -q -e '.[$(TEST_EXTRAS)]'
	$(BIN)/pip install -q --no-deps $$($(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["attacks"])')
	@rm -f $(VENV)/.installed-test-*
	@touch $@

typecheck: test-install ## mypy over app/ ([tool.mypy] in pyproject.toml)
	$(BIN)/mypy

test: test-install test-deps postgres typecheck ## the type checker and the whole suite: unit, API, SQLite + PostgreSQL, browser
	$(BIN)/python -m pytest

test-quick: test-install postgres ## everything but the browser tests
	$(BIN)/python -m pytest -m "not browser"

lint: typecheck
	$(BIN)/ruff check app tests benchmarks alembic
	$(BIN)/ruff format --check app tests benchmarks alembic

train: install ## retrain the Fashion-MNIST CNN and rewrite its model card (a few minutes on 2 cores)
	$(BIN)/arena train --pack fashion

bench: test-install  # the benchmarks compare with torchattacks
	$(BIN)/python benchmarks/round_creation.py
	$(BIN)/python benchmarks/pgd_overhead.py
	$(BIN)/python benchmarks/cloak_speed.py --threads 1

clean-venv:
	rm -rf $(VENV)
