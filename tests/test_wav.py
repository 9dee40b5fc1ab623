"""WAV reading: PCM widths, stereo downmix, resampling, and clear errors for bad files."""

import struct
import wave

import numpy as np
import pytest

from edgenn.errors import EdgennError
from edgenn.wav import read_wav, write_wav

RATE = 16000
SINE = 0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE // 4) / RATE)


def write_pcm(path, ints, width, channels=1, rate=RATE):
    """Write integer samples with the given byte width (8-bit is stored unsigned)."""
    if width == 1:
        raw = (ints + 128).astype(np.uint8).tobytes()
    elif width == 3:
        raw = b"".join(struct.pack("<i", int(v))[:3] for v in ints.reshape(-1))
    else:
        raw = ints.astype("<i2" if width == 2 else "<i4").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_pcm_widths(tmp_path, width):
    full = 2 ** (8 * width - 1)
    path = tmp_path / f"sine{width}.wav"
    write_pcm(path, np.round(SINE * (full - 1)).astype(np.int64), width)
    samples, rate = read_wav(path)
    assert rate == RATE and samples.dtype == np.float32
    np.testing.assert_allclose(samples, SINE, atol=1.5 / full)


def test_full_scale_stays_in_range(tmp_path):
    path = tmp_path / "extremes.wav"
    write_pcm(path, np.array([-32768, 32767, 0]), 2)
    samples, _ = read_wav(path)
    assert samples.min() == -1.0 and samples.max() < 1.0


def test_stereo_is_averaged(tmp_path):
    left = np.round(SINE * 32767).astype(np.int64)
    path = tmp_path / "stereo.wav"
    write_pcm(path, np.stack([left, np.zeros_like(left)], axis=1), 2, channels=2)
    samples, _ = read_wav(path)
    np.testing.assert_allclose(samples, SINE / 2, atol=1e-4)


def test_resampled_to_requested_rate(tmp_path):
    path = tmp_path / "22k.wav"
    t = np.arange(22050) / 22050
    write_wav(path, 0.5 * np.sin(2 * np.pi * 1000 * t), 22050)
    samples, rate = read_wav(path, rate=16000)
    assert rate == 16000 and len(samples) == 16000
    peak_hz = np.argmax(np.abs(np.fft.rfft(samples))) * rate / len(samples)
    assert abs(peak_hz - 1000) <= 1
    assert read_wav(path, rate=22050)[1] == 22050


def test_write_read_round_trip(tmp_path):
    write_wav(tmp_path / "x.wav", SINE, RATE)
    np.testing.assert_allclose(read_wav(tmp_path / "x.wav")[0], SINE, atol=1 / 32767)


def test_truncated_data_is_tolerated(tmp_path):
    path = tmp_path / "cut.wav"
    write_wav(path, SINE, RATE)
    path.write_bytes(path.read_bytes()[:-1])  # odd byte count: last frame incomplete
    assert len(read_wav(path)[0]) == len(SINE) - 1


def float_wav_bytes():
    data = np.zeros(100, "<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, RATE, RATE * 4, 4, 32)
    return (b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
            + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)


@pytest.mark.parametrize("content, what", [
    (b"this is not a wav file at all", "not a readable PCM WAV"),
    (b"RIFF\x10\x00\x00\x00WAVE", "not a readable PCM WAV"),
    (b"", "not a readable PCM WAV"),
    (float_wav_bytes(), "not a readable PCM WAV"),
])
def test_bad_files_raise_one_clear_error(tmp_path, content, what):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(EdgennError, match=what) as info:
        read_wav(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(EdgennError, match="no such WAV file"):
        read_wav(tmp_path / "missing.wav")
