# `make demo` and `make test` set up everything they need on Debian / Raspberry Pi OS with Python 3.11.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# tflite-runtime 2.14 needs numpy < 2, so it gets a venv of its own (tests compare runtimes).
TFLITE_VENV ?= .venv-tflite-runtime
# Bundles' standard metadata is checked with the readers others use: tflite-support pins protobuf < 4
# (TensorFlow needs newer), so it and MediaPipe (which has no protobuf pin since 1.x) share a venv.
READERS_VENV ?= .venv-metadata-readers
# A Pi's install: edgenn[device] alone (no TensorFlow), not editable, so the demo runs from the package's own files.
DEVICE_VENV ?= .venv-device
APT_TEST_PACKAGES := libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins openssh-server \
	openssh-client rsync mosquitto espeak-ng sox ffmpeg chromium chromium-driver systemd \
	libusb-1.0-0 libegl1 libgles2 libgl1
EDGENN_FIXTURES ?= $(abspath ../shared/fixtures)
export EDGENN_FIXTURES

.PHONY: demo demo-bundles test apt apt-demo venv venv-tflite-runtime venv-metadata-readers venv-device clean

DEMO_CALIBRATION ?= build/demo-calibration

demo: apt-demo venv
	$(PY) -m training.make_demo_samples --calibration $(DEMO_CALIBRATION)
	$(VENV)/bin/edgenn demo --calibration $(DEMO_CALIBRATION)

# Rebuild the int8 bundles edgenn/demo/ ships from the Keras models beside them (commit the result).
demo-bundles: venv
	$(PY) -m training.make_demo_samples --bundles --calibration $(DEMO_CALIBRATION)

test: apt venv venv-tflite-runtime venv-metadata-readers venv-device
	$(PY) -m pytest -q

apt-demo:
	@$(MAKE) --no-print-directory apt APT_TEST_PACKAGES="libportaudio2"

apt:
	@missing=$$(for p in $(APT_TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "The tests need these apt packages; run:"; \
	    echo "  sudo apt-get install -y --no-install-recommends $$missing"; exit 1; \
	  fi; \
	fi

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

venv: $(PY)
	$(PY) -m pip install -q -e ".[device,convert,flash,test]"

$(TFLITE_VENV)/bin/python:
	$(PYTHON) -m venv $(TFLITE_VENV)

venv-tflite-runtime: $(TFLITE_VENV)/bin/python
	$(TFLITE_VENV)/bin/python -m pip install -q "numpy<2" "tflite-runtime==2.14.*" click flatbuffers tflite
	$(TFLITE_VENV)/bin/python -m pip install -q --no-deps -e .

$(READERS_VENV)/bin/python:
	$(PYTHON) -m venv $(READERS_VENV)

venv-metadata-readers: $(READERS_VENV)/bin/python
	$(READERS_VENV)/bin/python -m pip install -q "tflite-support==0.4.4" "protobuf<4" "mediapipe==1.2.3"

$(DEVICE_VENV)/bin/python:
	$(PYTHON) -m venv $(DEVICE_VENV)
	$(DEVICE_VENV)/bin/python -m pip install -q --upgrade pip

venv-device: $(DEVICE_VENV)/bin/python
	$(DEVICE_VENV)/bin/python -m pip install -q ".[device]"

clean:
	rm -rf $(VENV) $(TFLITE_VENV) $(READERS_VENV) $(DEVICE_VENV) *.egg-info build edgenn-demo
