"""Interpreter threads for the camera, and whether the work around the model runs beside it or between
invokes, chosen by measuring them in the running pipeline.

No fixed rule is right for every model and board. Every core for the model wins when its invoke
dominates, but only if nothing else runs meanwhile: one decoding thread on one of its cores makes
the model's threads wait for each other (SSD MobileNet on 2 cores: 7.6 ms alone, 17 ms beside video
decoding), so with every core the capture, preparation and result handling wait while it invokes
(serial, as the examples' loop, except that decoding the next frame and preparing this one overlap).
All cores but one, beside the rest of the pipeline, wins when capture and preparation cost as much as
the model. The same model is opened once per candidate; after a block that warms up (untimed: the
first frames of a run are slow), frames alternate between them in blocks of 6 frames and 20 ms at least,
and the one that finishes frames fastest is kept (when a camera sets the pace both keep up: then the
shorter invoke, the fresher result). A setting slower by CLEAR after the first round is dropped there, and
its block ends once SHORT_BLOCK frames in a row showed it: every frame measured on it is a frame run slowly.
The others are closed.
"""

import statistics
from collections import namedtuple

BLOCK = 6          # frames in a row on one candidate, at least; the first of each block (the switch) is not timed
BLOCK_SECONDS = 0.02  # and at least this long: six frames of a tiny model (3 ms) are mostly scheduling noise
ROUNDS = 3         # blocks per candidate, at most
TIE = 0.05         # time per frame this close: the source sets the pace
CLEAR = 1.25       # time per frame this much longer after one round: decided without more rounds
SHORT_BLOCK = 3    # timed frames (and BLOCK_SECONDS) after which a block ends when every one was CLEAR slower
                   # (SSD on 2 cores: 4 frames at 14 ms instead of 6 where 8.3 ms is the other's)


Setting = namedtuple("Setting", "threads serial")


def candidates(cores):
    """Settings to try with `cores` cores: every core with the model alone, all but one beside the pipeline."""
    if cores <= 1:
        return [Setting(1, False)]
    return [Setting(cores, True), Setting(cores - 1, False)]


def describe(setting):
    threads = f"{setting.threads} thread{'s' if setting.threads > 1 else ''}"
    return f"{threads}, {'alone' if setting.serial else 'beside capture'}"


class ThreadChoice:
    """models: {Setting: opened model}, the same file each; why: set when there is nothing to measure."""

    def __init__(self, models, why=None):
        self.models = dict(models)
        self.order = list(self.models)
        self.frame_times = {setting: [] for setting in self.order}
        self.invoke_times = {setting: [] for setting in self.order}
        self.frames = 0
        self.block, self.block_frames, self.block_seconds = -1, 0, 0.0  # block -1: warming up, untimed
        self.chosen = self.order[0] if len(self.order) == 1 else None
        self.why = why or ("one candidate" if self.chosen else None)

    @property
    def setting(self):
        """The setting the next frame runs with."""
        if self.chosen is not None:
            return self.chosen
        return self.order[max(self.block, 0) % len(self.order)]

    @property
    def model(self):
        return self.models[self.setting]

    def record(self, frame_seconds, invoke_seconds):
        """One frame done on `self.setting`: time since the previous frame was done, and the invoke's own."""
        if self.chosen is not None:
            return
        if self.block_frames and self.block >= 0:  # a block's first frame waited on the other setting's frame
            self.frame_times[self.setting].append(frame_seconds)
            self.invoke_times[self.setting].append(invoke_seconds)
            self.block_seconds += frame_seconds
        self.frames += 1
        self.block_frames += 1
        if (self.block_frames < BLOCK or self.block_seconds < BLOCK_SECONDS and self.block >= 0) \
                and not self._clearly_slower():
            return
        self.block, self.block_frames, self.block_seconds = self.block + 1, 0, 0.0
        rounds, within = divmod(self.block, len(self.order))
        if rounds and within == 0 and (rounds == ROUNDS or self._clear()):
            self._decide()

    def _clearly_slower(self):
        """Every frame of this block so far was CLEAR times slower than the median of a setting measured before
        (the fastest, not the median: a hiccup on a setting's first frames must not decide against it)."""
        timed = self.block_frames - 1
        if self.block < 1 or timed < SHORT_BLOCK or self.block_seconds < BLOCK_SECONDS:
            return False
        own = min(self.frame_times[self.setting][-timed:])
        others = [statistics.median(v) for s, v in self.frame_times.items() if s != self.setting and v]
        return bool(others) and own >= CLEAR * min(others)

    def _medians(self):
        return ({t: statistics.median(v) for t, v in self.frame_times.items()},
                {t: statistics.median(v) for t, v in self.invoke_times.items()})

    def _clear(self):
        per_frame = self._medians()[0]
        return max(per_frame.values()) >= CLEAR * min(per_frame.values())

    def _decide(self):
        per_frame, invoke = self._medians()
        fastest = min(per_frame, key=per_frame.get)
        paced = max(per_frame.values()) <= (1 + TIE) * per_frame[fastest]
        self.chosen = min(invoke, key=invoke.get) if paced else fastest
        figures = ", ".join(f"{describe(t)} {1000 * per_frame[t]:.1f} ms a frame (invoke {1000 * invoke[t]:.1f} ms)"
                            for t in self.order)
        rule = "same pace: the shorter invoke" if paced else "the most frames"
        self.why = f"measured on {self.frames} frames: {figures}; kept {rule}"
        self.models = {self.chosen: self.models[self.chosen]}  # the others' interpreters are freed

    def summary(self):
        """{"threads": n, "serial": bool, "why": text} for the run summary (an unfinished measurement says so)."""
        setting = self.setting
        why = self.why if self.chosen is not None else (
            f"the run ended after {self.frames} frames, before the measurement of "
            f"{' vs '.join(describe(s) for s in self.order)} finished")
        return {"threads": setting.threads, "serial": setting.serial, "why": why}
