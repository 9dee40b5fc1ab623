"""Audio sources behind one interface: a sound card (sounddevice), a WAV file, raw PCM on stdin.

Every source delivers timestamped mono float32 blocks at the rate the model wants (resampled with
soxr when the input runs at another rate) through a bounded queue:

    source = open_audio_source("default", rate=16000)   # or "2", "USB Audio", "clip.wav", "-"
    source.start()
    while (block := source.read(timeout=0.1)) is not END:
        if block is not None: ...
    source.stop()

Live sources (a sound card, or a WAV file played at real-time pace) never wait for the consumer:
when the queue is full the block is dropped and counted as an overflow, and the stream clock keeps
running, so later blocks keep their true offsets. Recorded sources (a WAV file as fast as possible,
stdin) wait for the consumer instead, so nothing is lost.
"""

import os
import queue
import sys
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgenn.devices.run_control import put_until_stopped
from edgenn.errors import EdgennError
from edgenn.wav import _pcm_to_float  # the one PCM decoder; edgenn.wav reads whole files only

BLOCK_MS = 20
QUEUE_BLOCKS = 100   # 2 s of audio at 20 ms blocks
FALLBACK_RATES = (48000, 44100)
END = object()       # read() returns it once the source has ended


@dataclass
class Block:
    samples: np.ndarray  # float32 mono in [-1, 1], at the source's output rate
    offset: int          # index of its first sample in the stream (dropped audio included)
    time: float          # wall-clock time of its first sample (time.time())


class AudioSource:
    """Base: a producer (audio callback or reader thread) offers raw blocks; read() resamples them."""
    live = False

    def __init__(self, name, rate, block_ms=BLOCK_MS, queue_blocks=QUEUE_BLOCKS):
        self.name, self.rate, self.block_ms = name, int(rate), block_ms
        self.input_rate = self.rate
        self.queue = queue.Queue(maxsize=queue_blocks)
        self.overflows = 0          # blocks the consumer never saw (plus PortAudio's own overflows)
        self.lost_samples = 0       # input samples in the dropped blocks
        self.error = None
        self._stopping = threading.Event()
        self._pending_drop = 0      # input samples dropped since the last block that got through
        self._offset = 0
        self._resampler = None
        self._ended = False

    # --- producer side
    def _open(self):
        """Open the input and start producing; sets self.input_rate."""
        raise NotImplementedError

    def _close(self):
        pass

    def _offer(self, samples, when):
        """Hand one block to the consumer: dropped when the queue is full (live) or waited for (recorded)."""
        item = (samples, when, self._pending_drop)
        if self.live:
            try:
                self.queue.put_nowait(item)
                self._pending_drop = 0
            except queue.Full:
                self.overflows += 1
                self.lost_samples += len(samples)
                self._pending_drop += len(samples)
            return
        put_until_stopped(self.queue, item, self._stopping)

    def _finish(self, error=None):
        """The producer ends: END always reaches the consumer, after every block before it."""
        self.error = self.error or error
        put_until_stopped(self.queue, END, self._stopping)

    @property
    def block_input_samples(self):
        return max(1, int(round(self.input_rate * self.block_ms / 1000)))

    # --- consumer side
    def start(self):
        self._open()
        if self.input_rate != self.rate:
            self._resampler = _stream_resampler(self.input_rate, self.rate)
        return self

    def read(self, timeout=0.1):
        """The next Block, None when none arrived within timeout, END after the last block."""
        if self._ended:
            return END
        try:
            item = self.queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is END:
            self._ended = True
            if self._resampler is None:
                return END
            return self._block(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True), time.time())
        samples, when, dropped = item
        self._offset += int(round(dropped * self.rate / self.input_rate))
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        return self._block(samples, when)

    def _block(self, samples, when):
        block = Block(np.asarray(samples, np.float32), self._offset, when)
        self._offset += len(block.samples)
        return block

    def stop(self):
        self._stopping.set()
        self._close()

    def describe(self):
        rate = f"{self.input_rate} Hz" + (f" resampled to {self.rate} Hz" if self.input_rate != self.rate else "")
        return f"{self.name} ({rate})"


def _stream_resampler(from_rate, to_rate):
    try:
        import soxr
    except ImportError:
        raise EdgennError(f"resampling {from_rate} Hz -> {to_rate} Hz needs soxr: pip install soxr") from None
    return soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32")


# --- sound cards
def _sounddevice():
    try:
        import sounddevice
    except ImportError:
        raise EdgennError("microphone input needs sounddevice: pip install sounddevice") from None
    except OSError as exc:  # sounddevice imports but PortAudio is missing
        raise EdgennError(f"microphone input needs the PortAudio library ({exc}); "
                          "apt-get install libportaudio2") from None
    return sounddevice


def list_input_devices():
    """[{index, name, hostapi, channels, default_rate, default}] of the devices that can record."""
    sd = _sounddevice()
    default = sd.default.device[0]
    apis = sd.query_hostapis()
    return [{"index": d["index"], "name": d["name"], "hostapi": apis[d["hostapi"]]["name"],
             "channels": d["max_input_channels"], "default_rate": d["default_samplerate"],
             "default": d["index"] == default}
            for d in sd.query_devices() if d["max_input_channels"] > 0]


def _devices_line():
    devices = list_input_devices()
    if not devices:
        return ("no audio input devices found (check ALSA/PulseAudio, or that the microphone is plugged in; "
                "`edgenn listen --list-devices`)")
    names = ", ".join(f"{d['index']} '{d['name']}'" for d in devices)
    return f"input devices: {names} (`edgenn listen --list-devices`)"


def resolve_device(spec):
    """PortAudio device index of 'default', an index or a (part of a) device name; EdgennError listing the devices."""
    sd = _sounddevice()
    try:
        if spec in (None, "", "default"):
            index = sd.default.device[0]
            if index is None or index < 0:
                raise ValueError("no default input device")
            return int(index)
        if str(spec).isdigit():
            info = sd.query_devices(int(spec))
            if info["max_input_channels"] <= 0:
                raise ValueError(f"device {spec} has no input channels")
            return int(spec)
        return int(sd.query_devices(spec, "input")["index"])
    except (ValueError, sd.PortAudioError) as exc:
        raise EdgennError(f"no audio input device {spec!r} ({exc}); {_devices_line()}") from None


def choose_rate(device, rate, channels=1):
    """The model's rate when the device offers it, else 48 or 44.1 kHz (resampled), else its default rate."""
    sd = _sounddevice()
    candidates = [rate, *FALLBACK_RATES, int(sd.query_devices(device)["default_samplerate"])]
    for candidate in candidates:
        try:
            sd.check_input_settings(device=device, samplerate=candidate, channels=channels, dtype="float32")
            return int(candidate)
        except (ValueError, sd.PortAudioError):
            continue
    raise EdgennError(f"audio device {device} accepts none of the rates {sorted(set(candidates))} Hz; "
                      f"{_devices_line()}")


class MicrophoneSource(AudioSource):
    """A sound-card input through sounddevice (PortAudio): callback -> bounded queue."""
    live = True

    def __init__(self, device, rate, device_rate=None, **options):
        super().__init__(str(device), rate, **options)
        self.device_spec, self.device_rate = device, device_rate
        self.stream = None

    def _open(self):
        sd = _sounddevice()
        device = resolve_device(self.device_spec)
        info = sd.query_devices(device)
        self.name = f"{info['name']} (device {device})"
        self.input_rate = int(self.device_rate) if self.device_rate else choose_rate(device, self.rate)
        try:
            self.stream = sd.InputStream(device=device, channels=1, samplerate=self.input_rate, dtype="float32",
                                         blocksize=self.block_input_samples, callback=self._callback)
            self.stream.start()
        except (ValueError, sd.PortAudioError) as exc:
            raise EdgennError(f"cannot record from audio device {self.name} at {self.input_rate} Hz ({exc}); "
                              f"{_devices_line()}") from None

    def _callback(self, indata, frames, time_info, status):
        if status.input_overflow:
            self.overflows += 1
        self._offer(indata[:, 0].copy(), time.time() - frames / self.input_rate)

    def _close(self):
        if self.stream is not None:
            try:
                self.stream.stop()
                self.stream.close()
            except Exception:  # closing a stream whose device vanished may raise; nothing left to do
                pass
            self.stream = None


# --- WAV files
class WavSource(AudioSource):
    """A PCM WAV file read block by block (hours of audio stay small in memory); realtime paces it."""

    def __init__(self, path, rate, realtime=False, **options):
        super().__init__(str(path), rate, **options)
        self.path, self.live = Path(path), bool(realtime)
        self.reader = self.thread = None
        self.wav = open_wav(self.path)
        self.input_rate = self.wav.getframerate()

    def _open(self):
        self.thread = threading.Thread(target=self._run, name="wav-reader", daemon=True)
        self.thread.start()

    def _run(self):
        w = self.wav
        channels, width = w.getnchannels(), w.getsampwidth()
        started, position, error = time.time(), 0, None
        try:
            while not self._stopping.is_set():
                raw = w.readframes(self.block_input_samples)
                usable = len(raw) - len(raw) % (width * channels)
                if not usable:
                    break
                samples = _pcm_to_float(np.frombuffer(raw[:usable], np.uint8), width)
                samples = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)
                when = started + position / self.input_rate
                if self.live:  # real-time pace: this block is "captured" when its last sample has played
                    delay = when + len(samples) / self.input_rate - time.time()
                    if delay > 0 and self._stopping.wait(delay):
                        break
                else:
                    when = time.time()
                self._offer(samples, when)
                position += len(samples)
        except (wave.Error, EOFError, OSError) as exc:
            error = f"{self.path}: reading failed ({exc})"
        self._finish(error)

    def _close(self):
        if self.thread is not None:
            self.thread.join(timeout=2)
        self.wav.close()


def open_wav(path):
    """wave reader of a PCM WAV; one clear line for a missing, damaged or unsupported file."""
    try:
        w = wave.open(str(path), "rb")
    except FileNotFoundError:
        raise EdgennError(f"{path}: no such WAV file; check --source") from None
    except (wave.Error, EOFError, OSError) as exc:
        raise EdgennError(f"{path}: not a PCM WAV file edgenn can read ({exc}); convert it to 16-bit PCM, "
                          "e.g. `sox IN -b 16 -e signed OUT.wav`") from None
    if w.getsampwidth() not in (1, 2, 3, 4) or w.getnchannels() < 1 or w.getframerate() <= 0:
        w.close()
        raise EdgennError(f"{path}: unsupported WAV ({w.getsampwidth() * 8}-bit, {w.getnchannels()} channels, "
                          f"{w.getframerate()} Hz); use 8/16/24/32-bit PCM")
    return w


# --- raw PCM on stdin
class StdinSource(AudioSource):
    """Raw signed 16-bit little-endian mono PCM from a pipe (`arecord -f S16_LE -r 16000 | edgenn listen M -`)."""

    def __init__(self, rate, input_rate=None, stream=None, **options):
        super().__init__("stdin", rate, **options)
        self.input_rate = int(input_rate or rate)
        self.stream = stream or sys.stdin.buffer
        self.thread = None

    def _open(self):
        if hasattr(self.stream, "isatty") and self.stream.isatty():
            raise EdgennError("--source - reads raw s16le PCM from a pipe, but stdin is a terminal; "
                              "e.g. `arecord -f S16_LE -r 16000 -c 1 | edgenn listen MODEL --source -`")
        self.thread = threading.Thread(target=self._run, name="stdin-reader", daemon=True)
        self.thread.start()

    def _run(self):
        size = 2 * self.block_input_samples
        carry, error = b"", None
        try:
            fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None
        try:
            while not self._stopping.is_set():
                # os.read returns what the pipe has, so a slow writer does not hold back a whole block
                data = os.read(fd, size) if fd is not None else self.stream.read(size)
                if not data:
                    break
                data = carry + data
                usable = len(data) - len(data) % 2
                carry = data[usable:]
                if usable:
                    samples = np.frombuffer(data[:usable], "<i2").astype(np.float32) / 32768.0
                    self._offer(samples, time.time() - len(samples) / self.input_rate)
        except OSError as exc:
            error = f"reading stdin failed ({exc.strerror})"
        self._finish(error)


def open_audio_source(spec, rate, realtime=False, input_rate=None, device_rate=None, block_ms=BLOCK_MS,
                      queue_blocks=QUEUE_BLOCKS):
    """A source for SPEC: '-' = raw PCM on stdin, a .wav path = WAV file, else a sound card (default, index, name)."""
    options = {"block_ms": block_ms, "queue_blocks": queue_blocks}
    spec = "default" if spec in (None, "") else str(spec)
    if spec == "-":
        return StdinSource(rate, input_rate, **options)
    if spec.lower().endswith(".wav") or Path(spec).is_file():
        return WavSource(spec, rate, realtime, **options)
    return MicrophoneSource(int(spec) if spec.isdigit() else spec, rate, device_rate, **options)
