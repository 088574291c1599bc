# The README's two commands: `make book` (build the book) and `make test` (run the tests).
# Both create .venv with the package and its extras on first use; only Python >= 3.11 and make are needed.
# The versions installed are pinned by constraints.txt (the set the published book was built and tested with);
# `make lock` refreshes it, `make book CONSTRAINTS=` installs without it.
PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
PARAMS      ?= default
CONSTRAINTS ?= constraints.txt
PIP_C       := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))

.PHONY: book test chapter venv lock clean

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(PIP_C) -e '.[test,book]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

venv: $(VENV)/.installed

book: venv
	$(PY) ci/build_book.py --params $(PARAMS)

test: venv
	$(PY) -m pytest

# One chapter, with parameters of your own, rendered as a page:
#   make chapter NAME=04_learning_the_map ARGS='-p epochs 12 -p taus "[0.01, 2.0]"'
chapter: venv
	@test -n "$(NAME)" || { echo "usage: make chapter NAME=04_learning_the_map [ARGS='-p KEY VALUE ...']"; exit 2; }
	$(PY) ci/execute.py $(NAME) $(ARGS) --html

# Refresh constraints.txt: install the package and its extras with no pins into a fresh environment, then freeze
# it. Review the diff, run `make clean test book` on it, and commit it with the versions it changed.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[test,book]'
	{ echo "# The versions the book and the tests were built and run with (Python $$(.lock-venv/bin/python -c 'import platform; print(platform.python_version())'), $$(uname -m), $$(date -u +%Y-%m-%d))."; \
	  echo "# Used by make (pip install -c constraints.txt); refresh with: make lock"; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable; } > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf _build book/executed
