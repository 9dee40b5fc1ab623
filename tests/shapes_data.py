"""Generators of demo-shape pictures for `edgenn convert --calibration/--eval FILE.py:FUNCTION`.

Seeds differ from the training script's training stream ([seed, 1]); the held-out stream is the
one training/train_shapes.py reports its metrics on ([0, 2]). Picture sizes are the models' input
sizes from edgenn/demo/shapes.json."""

import json
from pathlib import Path

import numpy as np

from edgenn import demo_shapes

CARD = json.loads((Path(__file__).resolve().parents[1] / "edgenn" / "demo" / "shapes.json").read_text())


def _classification(seed):
    rng = np.random.default_rng(seed)
    while True:
        yield demo_shapes.classification_sample(rng, CARD["classifier"]["input_size"][0])


def _detection(seed):
    rng = np.random.default_rng(seed)
    while True:
        yield demo_shapes.detection_sample(rng, CARD["detector"]["input_size"][0],
                                          CARD["detector"]["max_objects"])


def classifier_calibration():
    return _classification([0, 3])


def classifier_heldout():
    return _classification([0, 2])


def detector_calibration():
    return _detection([0, 3])


def detector_heldout():
    return _detection([0, 2])
