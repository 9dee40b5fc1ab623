"""Phrases from a CTC phrase model on a live stream: speech activity, endpointing, greedy decoding, grammar.

    grammar = Grammar.load("phrases.txt", audio.settings["vocabulary"])  # optional
    listener = PhraseListener(audio, mode="streaming", grammar=grammar)
    for block in blocks: for phrase in listener.push(block.samples): ...

Speech activity: the level of every 20 ms hop against the room's noise floor (the quietest smoothed level
of the last second), so a phrase can end on a pause whatever the room; a loud stretch is speech once it lasts
SPEECH_SECONDS (a clank or a swell of the noise is shorter). Until a source has played a second the floor is
no higher than a quiet room (START_FLOOR_DB), so a phrase that begins the source is heard; the price: a room
louder than START_FLOOR_DB + SPEECH_DB reads as speech for that first second (a phrase begun then is timed
from the source's start, and ends no earlier than the second's end plus the pause). A phrase ends once a
word was heard and the room has been quiet for `pause_ms` (longer than the pauses between the words of one
phrase), or WORD_GAP_SECONDS after its last word where noise never lets the room go quiet.

  * streaming mode: the step model once per frame; greedy CTC decoding as the frames arrive. The state is
    reset in quiet stretches between phrases (the model learned phrases of a few seconds from zero state),
    so endless audio never takes it far from what it was trained on.
  * window mode: the window model over the last `window_frames` frames once a phrase has ended (and, in
    a stretch of noise that never pauses, every WORD_GAP_SECONDS to see whether its words have stopped);
    the words decoded after the previous phrase count.

Memory is bounded: scores are kept for at most `MAX_PHRASE_SECONDS`, and a phrase (or the streaming
state) that reaches it ends there.
"""

import collections
from dataclasses import dataclass

import numpy as np

from edgenn.errors import EdgennError
from edgenn.phrases import StreamingDecoder, ctc_log_likelihood
from edgenn.streaming import Stream
from edgenn.devices.speech import FrameRing, make_frontend

PAUSE_MS = 520          # a phrase ends after this much quiet (its words are up to ~0.4 s apart, and a
                        # word's quiet ends read as quiet too)...
WORD_GAP_SECONDS = 1.2  # ...or, in a room that is never quiet, this long after its last word: the next word
                        # of a phrase (<= 0.4 s pause, <= 0.8 s long) would have been heard by then
SPEECH_DB = 6.0         # a hop is loud this far above the noise floor...
SPEECH_SECONDS = 0.1    # ...and speech once the level (smoothed over 3 hops) has been loud this long: a 40 ms
                        # clank never is. While a shorter stretch may still grow into speech, and for 80 ms
                        # after one, no pause ends (room noise swells by 6 dB for 20-80 ms now and then:
                        # each restarted the pause, p90 latency 1.0 s -> 0.7 s)
WORD_THRESHOLD = 0.0    # a word counts when its score peaks this high (--threshold; any higher cost more
                        # words than the noise it kept out, on dev streams)
SILENCE_MARGIN = 2.0    # nats: what was heard must be e^2 times likelier than no word at all over the same
                        # frames (on dev streams: a stray "on" in noise gone, no word lost)
FLOOR_SECONDS = 1.0     # the noise floor: the quietest smoothed level over this long
START_FLOOR_DB = -60.0  # the floor until a source has played FLOOR_SECONDS: a source may begin with a word
LEAD_SECONDS = 0.3      # the scores a grammar weighs start this long before the phrase's speech
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
    heard: list = None     # greedy decoding's words when a grammar chose another phrase (scores are theirs)
    grammar: bool = False  # the words were matched to the grammar

    @property
    def text(self):
        return " ".join(self.words)

    @property
    def score(self):
        """Geometric mean of the word scores."""
        return float(np.exp(np.mean(np.log(np.maximum(self.scores, 1e-6))))) if self.scores else 0.0


QUIET, MAYBE, SPEECH = range(3)


class SpeechActivity:
    """QUIET, MAYBE (loud, or was loud a moment ago, for too short to tell) or SPEECH, per hop of samples,
    against a noise floor that follows the room."""

    def __init__(self, hop, hop_seconds):
        self.hop = hop
        self.pending = np.zeros(0, np.float32)
        self.levels = collections.deque(maxlen=3)
        self.floor = collections.deque([START_FLOOR_DB], maxlen=max(1, int(FLOOR_SECONDS / hop_seconds)))
        self.min_run = max(1, int(round(SPEECH_SECONDS / hop_seconds)))
        self.run = 0                  # loud hops in a row
        self.since_loud = 10 ** 9     # hops since the last loud one

    def push(self, samples):
        """[QUIET, MAYBE or SPEECH] for every whole hop in the samples."""
        x = np.concatenate([self.pending, np.asarray(samples, np.float32)])
        n = len(x) // self.hop
        self.pending = x[n * self.hop:]
        out = []
        for chunk in x[:n * self.hop].reshape(n, self.hop):
            self.levels.append(10 * np.log10(np.mean(chunk.astype(np.float64) ** 2) + 1e-10))
            level = float(np.mean(self.levels))
            self.floor.append(level)
            loud = level > min(self.floor) + SPEECH_DB
            self.run = self.run + 1 if loud else 0
            self.since_loud = 0 if loud else self.since_loud + 1
            out.append(SPEECH if self.run >= self.min_run else MAYBE if self.since_loud < self.min_run else QUIET)
        return out


class PhraseListener:
    """Runs a phrase AudioModel over pushed samples; returns Phrases as they end."""

    def __init__(self, audio, mode=None, grammar=None, pause_ms=None, threshold=None):
        if audio.task != "phrases":
            raise EdgennError(f"{audio.name} is a {audio.task} model; phrases need a CTC phrase model (manifest task "
                              "phrases, made by `edgenn convert --task phrases`)")
        self.mode = mode or ("streaming" if audio.streaming else "window")
        if self.mode == "streaming" and not audio.streaming:
            raise EdgennError(f"{audio.name} is a window model; streaming mode needs a step model "
                              "(`edgenn convert --streaming`), or use --mode window")
        decoder = audio.settings  # checked by load_audio_model
        self.audio, self.grammar = audio, grammar
        self.blank = int(decoder["blank_index"])
        self.ignored = {self.blank} | {audio.labels.index(f) for f in decoder["filler"]}
        p = audio.frontend
        self.hop_seconds = p.hop_samples / audio.rate
        self.pause = int(round((pause_ms or PAUSE_MS) / 1000 / self.hop_seconds))
        self.threshold = WORD_THRESHOLD if threshold is None else threshold
        self.lead = int(LEAD_SECONDS / self.hop_seconds)
        self.max_frames = int(MAX_PHRASE_SECONDS / self.hop_seconds)
        self.word_gap = int(WORD_GAP_SECONDS / self.hop_seconds)
        self.warmup = (audio.streaming or {}).get("warmup_frames", 0)
        self.frontend = make_frontend(p)
        self.activity = SpeechActivity(p.hop_samples, self.hop_seconds)
        self.frames = 0                # frames seen
        self.hop_activity = collections.deque()  # QUIET, MAYBE or SPEECH per hop not yet matched to a frame
        self.last_speech = -10 ** 9    # frame of the last speech hop
        self.maybe = False             # this frame may be speech: no pause ends here
        self.source_ended = False      # flush() is feeding quiet past the end of the source
        self.segment_start = None      # first speech frame since the last phrase
        self.phrase_from = 0           # frames before this belong to an earlier phrase
        self.samples = 0
        self.samples_heard = float("inf")
        if self.mode == "streaming":
            self.stream = Stream(audio.model, audio.streaming)
            self.state_age = 0
            self.log_probs = collections.deque(maxlen=self.max_frames)  # (frame, log scores)
            self.decoder = StreamingDecoder(self.blank, self.pause, self.max_frames, self.word_gap,
                                            self._expects_more if grammar is not None else None)
        else:
            self.ring = FrameRing(audio.window_frames, p.n_features)
            self.window_stream = Stream(audio.model, audio.streaming) if audio.streaming else None
            self.waiting = None  # (frame until which, last speech frame then): a grammar's prefix waits for more

    # --- stream time
    def _frame_end(self, frame):
        p = self.audio.frontend
        return min(frame * p.hop_samples + p.window_samples, self.samples_heard)

    def _seconds(self, frame):
        return self._frame_end(frame) / self.audio.rate

    def push(self, samples):
        self.samples += len(samples)
        self.hop_activity.extend(self.activity.push(samples))
        found = []
        for frame in self.frontend.push(samples):
            index = self.frames
            self.frames += 1
            activity = self.hop_activity.popleft() if self.hop_activity else QUIET
            speech, self.maybe = activity == SPEECH, activity == MAYBE
            if speech:
                self.last_speech = index
                if self.segment_start is None:  # the loud stretch began a little before it counted as speech
                    self.segment_start = max(self.phrase_from, index - self.activity.min_run + 1)
            if self.mode == "streaming":
                phrase = self._step(index, frame, speech)
            else:
                if index == 0:  # an unrolled window model's frames before the source: the room, not zeros
                    self.ring.buffer[:] = frame
                self.ring.add(frame)
                phrase = self._window_check(index)
            if phrase is not None:
                found.append(phrase)
        return found

    def flush(self):
        """Phrases still open at the end of a source: feed quiet past the end, so they end on a pause (a
        grammar's prefix too: nothing more will come)."""
        self.samples_heard = self.samples
        self.source_ended = True
        pad = int((self.pause + 4) * self.hop_seconds * self.audio.rate)
        return self.push(np.zeros(pad, np.float32))

    # --- streaming
    def _step(self, index, frame, speech):
        quiet = index - self.last_speech
        if self.decoder.open and self.state_age >= self.max_frames:  # chatter without pauses: end it here
            return self._end_streaming(index, self.decoder.finish())
        idle = not self.decoder.open and self.state_age >= MIN_STATE_SECONDS / self.hop_seconds
        quiet_enough = quiet >= QUIET_RESET_SECONDS / self.hop_seconds
        if idle and ((quiet_enough and not self.maybe) or self.state_age >= self.max_frames):
            self.stream.reset()
            self.state_age = 0
        scores = np.asarray(self.stream.step(frame[None, None]), np.float32).reshape(-1)
        self.state_age += 1
        if self.state_age <= self.warmup:
            return None  # a Conv1D without padding is still filling its context: no scores yet
        self.log_probs.append((index, np.log(np.maximum(scores, 1e-9))))
        tokens = self.decoder.update(index, scores, speech, self.maybe)
        if tokens:
            return self._end_streaming(index, tokens)
        if not self.decoder.open and quiet >= self.pause and not self.maybe:
            self.segment_start = None  # a noise, not a phrase
        return None

    def _end_streaming(self, index, tokens):
        start = self._phrase_start(tokens[0][0])
        frames = [lp for f, lp in self.log_probs if f >= max(self.phrase_from, start - self.lead)]
        self.phrase_from = index + 1
        return self._phrase(tokens, np.array(frames), start, index)

    def _expects_more(self, tokens):
        """A grammar says the words so far begin an allowed phrase and are none by themselves."""
        if self.source_ended:
            return False
        return self.grammar.expects_more([self.audio.labels[t] for _, t, _ in tokens if t not in self.ignored])

    # --- window
    def _window_check(self, index):
        if self.segment_start is None:
            return None
        span = index - self.segment_start
        ended = index - self.last_speech >= self.pause and not self.maybe
        full = span >= self.audio.window_frames - 1
        waiting = self.waiting and index < self.waiting[0] and self.last_speech == self.waiting[1]
        if ended and not full and waiting and not self.source_ended:
            return None  # a grammar's prefix was heard and nothing since: its next word may still come
        # a room that never goes quiet (a tap, dishes): look now and then whether the words have stopped
        looking = span >= self.word_gap and span % self.word_gap == 0
        if not (ended or full or looking):
            return None
        scores = self._window_scores()
        first = index - len(scores) + 1  # frame index of the window's first row
        begin = max(self.phrase_from, first, 0)
        rows = np.log(np.maximum(scores[begin - first:], 1e-9))
        decoder = StreamingDecoder(self.blank, pause=len(rows) + 1, max_frames=len(rows) + 1)
        for offset, row in enumerate(rows):
            decoder.update(begin + offset, np.exp(row), speech=False)
        tokens = decoder.finish() or []
        words = [t for t in tokens if t[1] not in self.ignored]
        word_lately = bool(words) and index - words[-1][0] < self.word_gap  # the next one may yet come
        if ended and not full and word_lately and self.grammar is not None and self._expects_more(words):
            self.waiting = (words[-1][0] + self.word_gap, self.last_speech)
            return None
        if not ended and not full:
            if not words:
                self.segment_start = None  # noise, no words: start afresh at the next loud hop
                self.phrase_from = max(self.phrase_from, index - self.lead)
                return None
            if word_lately:
                return None  # still talking
        self.phrase_from = index + 1
        self.waiting = None
        if not words:
            self.segment_start = None
            return None
        start = self._phrase_start(tokens[0][0])
        return self._phrase(tokens, rows[max(0, start - self.lead - begin):], start, index)

    def _window_scores(self):
        window = self.ring.window()
        if self.window_stream is not None:  # a step model replays the window from zero state, never frames from
            window = window[-self.frames:]  # before the source: a phrase at its very start is heard as in training
            self.window_stream.reset()
            rows = [np.asarray(self.window_stream.step(f[None, None])).reshape(-1) for f in window]
            return np.stack(rows[self.warmup:])
        out = self.audio.model.run(window[None])[0]
        return out.reshape(-1, out.shape[-1])

    # --- both
    def _phrase_start(self, first_token_frame):
        """Where the speech of a phrase began: where the room got loud before its first word (not long before)."""
        start = first_token_frame if self.segment_start is None else min(self.segment_start, first_token_frame)
        self.segment_start = None
        return start if first_token_frame - start <= self.max_frames else first_token_frame

    def _phrase(self, tokens, log_probs, start, index):
        """The Phrase of tokens [(frame, token, peak)] decided at frame `index`; None for fillers only or noise."""
        kept = [(frame, t, peak) for frame, t, peak in tokens if t not in self.ignored and peak >= self.threshold]
        if not kept:
            return None
        labels = self.audio.labels
        words = [labels[t] for _, t, _ in kept]
        end = self.last_speech if self.last_speech >= start else min(kept[-1][0], index)
        phrase = Phrase(words=words, scores=[peak for _, _, peak in kept],
                        start=start * self.audio.frontend.hop_samples / self.audio.rate,
                        end=self._seconds(end), detected=self._seconds(index), end_sample=self._frame_end(index))
        heard = [t for _, t, _ in tokens]
        if ctc_log_likelihood(log_probs, heard, self.blank) - ctc_log_likelihood(log_probs, [], self.blank) \
                < SILENCE_MARGIN:
            return None  # hardly likelier than no word at all: noise (a clank heard as "on")
        if self.grammar is not None:
            chosen, _ = self.grammar.match(log_probs, labels, self.blank, heard)
            if chosen != words:
                phrase.heard, phrase.words = words, chosen or []
            phrase.grammar = True  # with no words when nothing the grammar allows was said
        return phrase
