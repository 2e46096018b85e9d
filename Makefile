# digitsite: `make run` to start the site, `make test` to run every test. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
SHARED_MNIST ?= ../shared/mnist/MNIST

.PHONY: install migrate run serve worker test data train bench-latency bench-pendigits bench-feedback bench-feedback-offline clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -r requirements.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --noinput

# The site on an embedded SQLite database, with the shipped model; DEBUG stays off.
run: migrate
	@echo "The admin's \"Retrain now\" needs the training worker: run 'make worker' in another terminal."
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# The production server: gunicorn with gunicorn.conf.py (one worker per core, torch one thread
# each, access log on stdout), on the same embedded SQLite and shipped model as `make run`.
serve: migrate
	$(BIN)/gunicorn -c gunicorn.conf.py --bind $(HOST):$(PORT)

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
	rm -rf $(VENV) .pytest_cache
