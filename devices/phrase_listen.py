"""Phrases from a CTC phrase model on a live stream: speech activity, endpointing, greedy decoding, grammar.

    listener = PhraseListener(audio, mode="streaming", grammar=Grammar.load("phrases.txt", audio.labels))
    for block in blocks: for phrase in listener.push(block.samples): ...

Speech activity: the level of every 20 ms hop against the room's noise floor (the quietest smoothed level
of the last second), so a phrase can end on a pause whatever the room. A phrase ends once a word was heard
and the room has been quiet for `pause_ms` (longer than the pauses between the words of one phrase), or
WORD_GAP_SECONDS after its last word where noise never lets the room go quiet.

  * streaming mode: the step model once per frame; greedy CTC decoding as the frames arrive. The state is
    reset in quiet stretches between phrases (the model learned phrases of a few seconds from zero state),
    so endless audio never takes it far from what it was trained on.
  * window mode: once a phrase has ended, the window model (the last `window_frames` frames) once; the words
    decoded after the phrase's start count.

Memory is bounded: scores are kept for at most `MAX_PHRASE_SECONDS`; a phrase that long ends there.
"""

import collections
from dataclasses import dataclass, field

import numpy as np

from edgenn.errors import EdgennError
from edgenn.phrases import StreamingDecoder, greedy_tokens
from edgenn.streaming import Stream
from edgenn.devices.speech import FrameRing, make_frontend

PAUSE_MS = 500          # a phrase ends after this much quiet (its words are up to ~0.4 s apart, and a
                        # word's quiet ends read as quiet too)...
WORD_GAP_SECONDS = 1.2  # ...or, in a room that is never quiet, this long after its last word: the next word
                        # of a phrase (<= 0.4 s pause, <= 0.8 s long) would have been heard by then
SPEECH_DB = 6.0         # a hop is speech this far above the noise floor
FLOOR_SECONDS = 1.0     # the noise floor: the quietest smoothed level over this long
LEAD_SECONDS = 0.3      # window mode: words decoded this long before the speech began still count
QUIET_RESET_SECONDS = 0.3  # streaming: reset the state after this much quiet between phrases...
MIN_STATE_SECONDS = 1.0    # ...once it has run this long
MAX_PHRASE_SECONDS = 8.0


@dataclass
class Phrase:
    words: list            # the words, fillers left out
    scores: list           # each word's peak score
    start: float           # stream seconds: where the speech of the phrase began
    end: float             # where it ended
    detected: float        # the stream time at which the phrase was decided
    end_sample: int
    heard: list = None     # greedy decoding's words when a grammar chose another phrase
    grammar: bool = False  # the words were matched to the grammar
    tokens: list = field(default_factory=list)

    @property
    def text(self):
        return " ".join(self.words)

    @property
    def score(self):
        """Geometric mean of the word scores."""
        return float(np.exp(np.mean(np.log(np.maximum(self.scores, 1e-6))))) if self.scores else 0.0


class SpeechActivity:
    """Speech or not, per hop of samples, against a noise floor that follows the room."""

    def __init__(self, hop, hop_seconds):
        self.hop = hop
        self.pending = np.zeros(0, np.float32)
        self.levels = collections.deque(maxlen=3)
        self.floor = collections.deque(maxlen=max(1, int(FLOOR_SECONDS / hop_seconds)))

    def push(self, samples):
        """[speech?] for every whole hop in the samples."""
        x = np.concatenate([self.pending, np.asarray(samples, np.float32)])
        n = len(x) // self.hop
        self.pending = x[n * self.hop:]
        out = []
        for chunk in x[:n * self.hop].reshape(n, self.hop):
            self.levels.append(10 * np.log10(np.mean(chunk.astype(np.float64) ** 2) + 1e-10))
            level = float(np.mean(self.levels))
            self.floor.append(level)
            out.append(level > min(self.floor) + SPEECH_DB)
        return out


class PhraseListener:
    """Runs a phrase AudioModel over pushed samples; returns Phrases as they end."""

    def __init__(self, audio, mode=None, grammar=None, pause_ms=None):
        if audio.task != "phrases":
            raise EdgennError(f"{audio.name} is a {audio.task} model; phrases need a CTC phrase model (manifest task "
                              "phrases, made by `edgenn convert --task phrases`)")
        self.mode = mode or ("streaming" if audio.streaming else "window")
        if self.mode == "streaming" and not audio.streaming:
            raise EdgennError(f"{audio.name} is a window model; streaming mode needs a step model "
                              "(`edgenn convert --streaming`), or use --mode window")
        decoder = audio.settings
        self.audio, self.grammar = audio, grammar
        self.blank = int(decoder["blank_index"])
        self.ignored = {self.blank} | {audio.labels.index(f) for f in decoder.get("filler", [])}
        p = audio.frontend
        self.hop_seconds = p.hop_samples / audio.rate
        self.pause = int(round((pause_ms or PAUSE_MS) / 1000 / self.hop_seconds))
        self.frontend = make_frontend(p)
        self.activity = SpeechActivity(p.hop_samples, self.hop_seconds)
        self.max_frames = int(MAX_PHRASE_SECONDS / self.hop_seconds)
        self.word_gap = int(WORD_GAP_SECONDS / self.hop_seconds)
        self.frames = 0                # frames seen
        self.speech = collections.deque()  # speech? per hop not yet matched to a frame
        self.last_speech = -10 ** 9    # frame of the last speech hop
        self.segment_start = None      # first speech frame since the last phrase
        self.phrase_from = 0           # frames before this belong to an earlier phrase
        self.samples = 0
        self.samples_heard = float("inf")
        if self.mode == "streaming":
            self.stream = Stream(audio.model, audio.streaming)
            self.state_age = 0
            self.log_probs = collections.deque(maxlen=self.max_frames)  # (frame, log scores)
            self.decoder = StreamingDecoder(self.blank, self.pause, self.max_frames, self.word_gap)
        else:
            self.ring = FrameRing(audio.window_frames, p.n_features)
            self.window_stream = Stream(audio.model, audio.streaming) if audio.streaming else None

    # --- stream time
    def _frame_end(self, frame):
        p = self.audio.frontend
        return min(frame * p.hop_samples + p.window_samples, self.samples_heard)

    def _seconds(self, frame):
        return self._frame_end(frame) / self.audio.rate

    def push(self, samples):
        self.samples += len(samples)
        self.speech.extend(self.activity.push(samples))
        found = []
        for frame in self.frontend.push(samples):
            index = self.frames
            self.frames += 1
            speech = bool(self.speech) and self.speech.popleft()
            if speech:
                self.last_speech = index
                if self.segment_start is None:
                    self.segment_start = index
            if self.mode == "streaming":
                phrase = self._step(index, frame, speech)
            else:
                self.ring.add(frame)
                phrase = self._window_check(index)
            if phrase is not None:
                found.append(phrase)
        return found

    def flush(self):
        """Phrases still open at the end of a source: feed quiet past the end, so they end on a pause."""
        self.samples_heard = self.samples
        pad = int((self.pause + 4) * self.hop_seconds * self.audio.rate)
        return self.push(np.zeros(pad, np.float32))

    # --- streaming
    def _step(self, index, frame, speech):
        quiet = index - self.last_speech
        idle = not self.decoder.open and self.state_age >= MIN_STATE_SECONDS / self.hop_seconds
        if idle and (quiet >= QUIET_RESET_SECONDS / self.hop_seconds or self.state_age >= self.max_frames):
            self.stream.reset()
            self.state_age = 0
        scores = np.asarray(self.stream.step(frame[None, None]), np.float32).reshape(-1)
        self.state_age += 1
        if self.state_age <= self.audio.streaming.get("warmup_frames", 0):
            return None  # a Conv1D without padding is still filling its context: no scores yet
        self.log_probs.append((index, np.log(np.maximum(scores, 1e-9))))
        tokens = self.decoder.update(index, scores, speech)
        if tokens:
            return self._end_streaming(index, tokens)
        if not self.decoder.open and quiet >= self.pause:
            self.segment_start = None  # a noise, not a phrase
        return None

    def _end_streaming(self, index, tokens):
        start = self._phrase_start(tokens[0][0])
        frames = [lp for f, lp in self.log_probs if f >= start - int(LEAD_SECONDS / self.hop_seconds)]
        self.phrase_from = index + 1
        return self._phrase([t for _, t, _ in tokens], [s for _, _, s in tokens], np.array(frames), start, index,
                            tokens[-1][0])

    # --- window
    def _window_check(self, index):
        if self.segment_start is None:
            return None
        span = index - self.segment_start
        ended = index - self.last_speech >= self.pause
        full = span >= self.audio.window_frames - 1
        # a room that never goes quiet (a tap, dishes): look now and then whether the words have stopped
        looking = span >= self.word_gap and span % self.word_gap == 0
        if not (ended or full or looking):
            return None
        scores = self._window_scores()
        first = index - len(scores) + 1  # frame index of the window's first row
        begin = max(self.phrase_from, self.segment_start - int(LEAD_SECONDS / self.hop_seconds), first)
        rows = np.log(np.maximum(scores[begin - first:], 1e-9))
        best = rows.argmax(-1)
        words = np.flatnonzero(~np.isin(best, list(self.ignored)))
        if not ended and not full:
            if not len(words):
                self.segment_start = None  # noise, no words: start afresh at the next loud hop
                return None
            if index - (begin + words[-1]) < self.word_gap:
                return None  # still talking
        self.phrase_from = index + 1
        start = self.segment_start
        self.segment_start = None
        if not len(words):
            return None
        tokens = greedy_tokens(best, self.blank)
        peaks = _token_peaks(best, np.exp(rows), self.blank)
        return self._phrase(tokens, peaks, rows, start, index, begin + words[-1])

    def _window_scores(self):
        window = self.ring.window()
        if self.window_stream is not None:  # a step model replays the window from zero state
            self.window_stream.reset()
            rows = [np.asarray(self.window_stream.step(f[None, None])).reshape(-1) for f in window]
            return np.stack(rows[self.audio.streaming.get("warmup_frames", 0):])
        out = self.audio.model.run(window[None])[0]
        return out.reshape(-1, out.shape[-1])

    # --- both
    def _phrase_start(self, first_token_frame):
        """Where the speech of a phrase began: the segment start, unless that was long before its first word."""
        start = self.segment_start if self.segment_start is not None else first_token_frame
        self.segment_start = None
        return start if first_token_frame - start <= self.max_frames else first_token_frame

    def _phrase(self, tokens, peaks, log_probs, start, index, last_word):
        """The Phrase of tokens decided at frame `index`; it ends with its speech (or its last word if quiet)."""
        kept = [(t, s) for t, s in zip(tokens, peaks) if t not in self.ignored]
        if not kept:
            return None
        labels = self.audio.labels
        words = [labels[t] for t, _ in kept]
        phrase = Phrase(words=words, scores=[s for _, s in kept],
                        start=start * self.audio.frontend.hop_samples / self.audio.rate,
                        end=self._seconds(self.last_speech if self.last_speech >= start else min(last_word, index)),
                        detected=self._seconds(index),
                        end_sample=self._frame_end(index), tokens=list(tokens))
        if self.grammar is not None:
            chosen, _ = self.grammar.match(log_probs, labels, self.blank, list(tokens))
            if chosen != words:
                phrase.heard = words
                phrase.words = chosen or []
            phrase.grammar = True  # with no words when nothing the grammar allows was said
        return phrase


def _token_peaks(best, probs, blank):
    """The peak score of each decoded token (in the order greedy_tokens gives them)."""
    peaks, previous = [], blank
    for frame, token in enumerate(best):
        if token != blank and token != previous:
            peaks.append(float(probs[frame, token]))
        elif token != blank and peaks:
            peaks[-1] = max(peaks[-1], float(probs[frame, token]))
        previous = token
    return peaks
