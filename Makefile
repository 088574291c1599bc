# The README's two commands: `make book` (build the book) and `make test` (run the tests).
# Both create .venv with the package and its extras on first use; only Python >= 3.10 is needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PARAMS ?= default

.PHONY: book test venv clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,book]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

venv: $(VENV)/.installed

book: venv
	$(PY) ci/build_book.py --params $(PARAMS)

test: venv
	$(PY) -m pytest

clean:
	rm -rf _build book/executed
