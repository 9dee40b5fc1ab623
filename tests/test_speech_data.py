"""Synthetic speech data for the demo model: deterministic, held-out voices apart, no tensorflow."""

import subprocess
import sys


from conftest import REPO, require_exe


def test_held_out_voices_are_disjoint():
    sys.path.insert(0, str(REPO))
    from training import speech_data
    train, held_out = set(speech_data.voices(False)), set(speech_data.voices(True))
    assert train and held_out and not train & held_out
    assert all(v.split("+")[1] not in speech_data.HELD_OUT_VARIANTS for v in train)


def test_dataset_and_stream_are_deterministic_without_tensorflow():
    require_exe("espeak-ng")
    # A child process where tensorflow cannot be imported proves the data path does not need it.
    code = (
        "import sys, numpy as np; sys.modules['tensorflow'] = None\n"
        "from training.speech_data import make_dataset, make_keyword_stream, LABELS, RATE\n"
        "a = make_dataset(2, True, seed=3); b = make_dataset(2, True, seed=3)\n"
        "assert a[0].shape[1] == RATE and np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])\n"
        "assert set(a[1]) >= set(range(2, len(LABELS))) and np.abs(a[0]).max() <= 1\n"
        "s, rate, truth = make_keyword_stream(12, seed=1)\n"
        "assert rate == RATE and len(s) == 12 * RATE and s.dtype == np.float32\n"
        "assert truth == make_keyword_stream(12, seed=1)[2] and len(truth) >= 3\n"
        "for t, word in truth:\n"
        "    i = int(t * RATE); assert np.abs(s[i:i + RATE // 2]).max() > 3 * np.abs(s[max(0, i - 3200):i - 1600]).max(), (t, word)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
