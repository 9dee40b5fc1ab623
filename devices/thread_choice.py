"""Interpreter threads for the camera, chosen by measuring them in the running pipeline.

No fixed rule is right for every model and board: giving the model every core wins when its invoke
dominates (SSD MobileNet on 2 cores: 1.6x the frames of one thread), leaving one core free wins when
capture, resize and decode are as slow as the model. So the same model is opened once per candidate
thread count, the first frames alternate between them in blocks, and the one that finishes frames
fastest is kept (under a camera that sets the pace both keep up: then the shorter invoke, the fresher
result). The others are closed.
"""

import statistics

BLOCK = 6          # frames in a row on one candidate; the first of each block (the switch) is not timed
ROUNDS = 3         # blocks per candidate
TIE = 0.05         # time per frame this close: the source sets the pace


def candidates(cores):
    """Thread counts to try on a machine (or board) with `cores` cores: all of them, and all but one."""
    return sorted({cores, max(1, cores - 1)}, reverse=True)


class ThreadChoice:
    """models: {threads: opened model}, the same file each; why: set when there is nothing to measure."""

    def __init__(self, models, why=None):
        self.models = dict(models)
        self.order = list(self.models)
        self.frame_times = {threads: [] for threads in self.order}
        self.invoke_times = {threads: [] for threads in self.order}
        self.frames = 0
        self.chosen = self.order[0] if len(self.order) == 1 else None
        self.why = why or ("one candidate" if self.chosen else None)

    @property
    def threads(self):
        """The thread count the next frame runs with."""
        if self.chosen is not None:
            return self.chosen
        return self.order[(self.frames // BLOCK) % len(self.order)]

    @property
    def model(self):
        return self.models[self.threads]

    def record(self, frame_seconds, invoke_seconds):
        """One frame done on `self.threads`: time since the previous invoke started, and the invoke's own."""
        if self.chosen is not None:
            return
        if self.frames % BLOCK:  # the first frame of a block waited on the other model's frame
            self.frame_times[self.threads].append(frame_seconds)
            self.invoke_times[self.threads].append(invoke_seconds)
        self.frames += 1
        if self.frames == BLOCK * ROUNDS * len(self.order):
            self._decide()

    def _decide(self):
        per_frame = {t: statistics.median(v) for t, v in self.frame_times.items()}
        invoke = {t: statistics.median(v) for t, v in self.invoke_times.items()}
        fastest = min(per_frame, key=per_frame.get)
        paced = max(per_frame.values()) <= (1 + TIE) * per_frame[fastest]
        self.chosen = min(invoke, key=invoke.get) if paced else fastest
        figures = ", ".join(f"{t} thread{'s' if t > 1 else ''} {1000 * per_frame[t]:.1f} ms a frame "
                            f"(invoke {1000 * invoke[t]:.1f} ms)" for t in self.order)
        rule = "same pace: the shorter invoke" if paced else "the most frames"
        self.why = f"measured on {self.frames} frames: {figures}; kept {rule}"
        self.models = {self.chosen: self.models[self.chosen]}  # the others' interpreters are freed

    def summary(self):
        """{"threads": n, "why": text} for the run summary (an unfinished measurement says so)."""
        if self.chosen is None:
            return {"threads": self.threads, "why": f"the run ended after {self.frames} frames, before the "
                                                    f"measurement of {list(self.order)} threads finished"}
        return {"threads": self.chosen, "why": self.why}
