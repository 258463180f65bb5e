# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo demo-phantom test check-kernels lint demo-model bench clean

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

test: $(STAMP)
	QT_QPA_PLATFORM=$${QT_QPA_PLATFORM:-offscreen} $(BIN)/python -m pytest -q -ra

# The numerical tests under every OpenBLAS kernel this CPU runs (Haswell, Zen, SkylakeX with AVX-512).
check-kernels: $(STAMP)
	$(BIN)/python tools/check_blas_kernels.py

lint: $(STAMP)
	$(BIN)/ruff check bci_stream offline_training tools tests

demo-model: $(STAMP)
	$(BIN)/python tools/build_demo_model.py

bench: $(STAMP)
	$(BIN)/python tools/bench_latency.py --seconds 60
	$(BIN)/python tools/bench_features.py

clean:
	rm -rf $(VENV) build *.egg-info
