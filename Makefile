# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo demo-phantom test check-kernels lint demo-model models bench docs docs-screenshot clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# venvs made before the install layers had onnxruntime-gpu; the core's onnxruntime shares its folder
	@$(BIN)/python -m pip uninstall -q -y onnxruntime-gpu 2>/dev/null || true
	$(BIN)/python -m pip install -q -e '.[all,dev]'
	@touch $(STAMP)

venv: $(STAMP)

# a real Muse recording (faces vs houses, shipped) decoded live; `make demo-phantom` for the phantom headset
demo: $(STAMP)
	$(BIN)/python -m bci_stream.demo --real

demo-phantom: $(STAMP)
	$(BIN)/python -m bci_stream.demo

# every test, the slow ones too (a bare `pytest` leaves out those marked slow: pyproject's addopts)
test: $(STAMP)
	QT_QPA_PLATFORM=$${QT_QPA_PLATFORM:-offscreen} $(BIN)/python -m pytest -q -ra -m ""

# The numerical tests under every OpenBLAS kernel this CPU runs (Haswell, Zen, SkylakeX with AVX-512).
check-kernels: $(STAMP)
	$(BIN)/python tools/check_blas_kernels.py

lint: $(STAMP)
	$(BIN)/ruff check bci_stream offline_training tools tests

demo-model: $(STAMP)
	$(BIN)/python tools/build_demo_model.py

# the model zoo (models/README.md): every model rebuilt with its one command, its card and report rewritten
models: $(STAMP)
	$(BIN)/python tools/build_demo_model.py
	$(BIN)/python tools/build_zero_shot_model.py
	$(BIN)/python tools/build_real_demo_model.py

bench: $(STAMP)
	$(BIN)/python tools/bench_latency.py --seconds 60
	$(BIN)/python tools/bench_features.py

# The documentation site (Sphinx + MyST + numpydoc + sphinx-gallery; the examples run): docs/_build/html.
# Warnings are errors, then every public class and function must be in the API reference.
docs: $(STAMP)
	@$(BIN)/python -c "import sphinx, numpydoc, sphinx_gallery, myst_parser, pydata_sphinx_theme" 2>/dev/null || \
		$(BIN)/python -m pip install -q -e '.[docs]'
	rm -rf docs/generated docs/auto_examples
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html
	$(BIN)/python tools/check_api_docs.py docs/_build/html

# docs/site_front_page.png: the site's front page in headless Chromium (apt-get install chromium)
docs-screenshot:
	d=$$(mktemp -d) && chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
		--disable-component-update --disable-sync --no-first-run --user-data-dir=$$d --hide-scrollbars \
		--window-size=1400,1000 --screenshot=$(CURDIR)/docs/site_front_page.png \
		file://$(CURDIR)/docs/_build/html/index.html; rm -rf $$d

clean:
	rm -rf $(VENV) build *.egg-info docs/_build docs/generated docs/auto_examples
