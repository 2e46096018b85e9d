# digitsite: `make run` to start the site, `make test` to run every test. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
SHARED_MNIST ?= ../shared/mnist/MNIST

.PHONY: install web-install migrate run serve worker test data train bench-latency bench-pendigits bench-feedback bench-feedback-offline clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -r requirements.txt
	touch $@

install: $(VENV)/.installed

# A web machine's lean install (requirements/web.txt: no torch, about 0.5 GB against 6 GB): it
# serves models from their serving forms, which the full install builds when it publishes them.
WEB_VENV ?= .venv-web
$(WEB_VENV)/.installed: requirements/web.txt
	$(PYTHON) -m venv $(WEB_VENV)
	$(WEB_VENV)/bin/pip install --disable-pip-version-check -r requirements/web.txt
	touch $@

web-install: $(WEB_VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --noinput

# The site on an embedded SQLite database, with the shipped model; DEBUG stays off.
run: migrate
	@echo "The admin's \"Retrain now\" needs the training worker: run 'make worker' in another terminal."
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# The production server: gunicorn with gunicorn.conf.py (one worker per core, one thread each,
# access log on stdout), on the same embedded SQLite and shipped model as `make run`.
# `make serve LEAN=1` runs it from the lean install (.venv-web, made on first use), as a web machine does.
ifeq ($(LEAN),1)
serve: web-install
	$(WEB_VENV)/bin/python manage.py migrate --noinput
	$(WEB_VENV)/bin/gunicorn -c gunicorn.conf.py --bind $(HOST):$(PORT)
else
serve: migrate
	$(BIN)/gunicorn -c gunicorn.conf.py --bind $(HOST):$(PORT)
endif

# Runs the training runs queued by the admin's "Retrain now", one at a time.
worker: migrate data
	$(BIN)/python manage.py training_worker

test: install
	$(BIN)/python -m pytest

# MNIST for training: a local copy of the original files when there is one, else
# train_digits downloads them into data/.
data:
	@if [ ! -e data/MNIST/raw/train-images-idx3-ubyte.gz ] && [ -d $(SHARED_MNIST) ]; then \
		mkdir -p data && cp -r $(SHARED_MNIST) data/ && chmod -R u+w data/MNIST && echo "copied MNIST into data/"; fi

train: migrate data
	$(BIN)/python manage.py train_digits

bench-latency: migrate
	$(BIN)/python -m bench.latency

bench-pendigits: migrate
	$(BIN)/python -m bench.pendigits --quick

bench-feedback: migrate data
	$(BIN)/python -m bench.feedback_loop

bench-feedback-offline: migrate data
	$(BIN)/python -m bench.feedback_offline

clean:
	rm -rf $(VENV) $(WEB_VENV) .pytest_cache
