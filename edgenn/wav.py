"""Read PCM WAV files as float32 mono samples in [-1, 1] (stdlib `wave`; `soxr` to resample)."""

import wave

import numpy as np

from edgenn.errors import EdgennError


def read_wav(path, rate=None):
    """(samples, rate): float32 mono in [-1, 1]; channels averaged; resampled to `rate` if given.

    `path` may also be a binary file object (e.g. io.BytesIO of espeak-ng output).

    8-, 16-, 24- and 32-bit integer PCM are supported; anything else raises EdgennError.
    """
    try:
        with wave.open(path if hasattr(path, "read") else str(path), "rb") as w:
            channels, width, file_rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except FileNotFoundError:
        raise EdgennError(f"{path}: no such WAV file") from None
    except (wave.Error, EOFError, OSError) as exc:
        raise EdgennError(f"{path}: not a readable PCM WAV file ({exc}); convert it to 16-bit PCM, "
                          "e.g. `sox IN -b 16 -e signed OUT.wav`") from None
    if width not in (1, 2, 3, 4) or channels < 1 or file_rate <= 0:
        raise EdgennError(f"{path}: unsupported WAV ({width * 8}-bit, {channels} channels, {file_rate} Hz); "
                          "use 8/16/24/32-bit PCM")
    usable = len(raw) - len(raw) % (width * channels)  # a truncated last frame is dropped
    samples = _pcm_to_float(np.frombuffer(raw[:usable], dtype=np.uint8), width)
    samples = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    if rate and rate != file_rate:
        samples = resample(samples, file_rate, rate)
        file_rate = rate
    return samples.astype(np.float32, copy=False), file_rate


def resample(samples, from_rate, to_rate):
    """High-quality resampling with soxr (imported only when needed)."""
    try:
        import soxr
    except ImportError:
        raise EdgennError(f"resampling {from_rate} Hz -> {to_rate} Hz needs soxr: pip install soxr") from None
    return soxr.resample(np.asarray(samples, dtype=np.float32), from_rate, to_rate).astype(np.float32)


def write_wav(path, samples, rate):
    """Write float samples in [-1, 1] as 16-bit mono PCM (clipped)."""
    pcm = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(pcm.tobytes())


def _pcm_to_float(data, width):
    if width == 1:  # 8-bit WAV is unsigned with 128 as zero
        return (data.astype(np.float32) - 128.0) / 128.0
    if width == 3:  # widen little-endian 24-bit to 32-bit by putting the bytes at the top
        padded = np.zeros((len(data) // 3, 4), dtype=np.uint8)
        padded[:, 1:] = data.reshape(-1, 3)
        data, width = padded.reshape(-1), 4
    ints = data.view("<i2" if width == 2 else "<i4")
    return ints.astype(np.float32) / float(2 ** (8 * width - 1))
