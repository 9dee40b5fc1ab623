"""Interpreter threads chosen by measurement (devices/thread_choice.py): the decision rule on recorded timings,
and the camera runner measuring, keeping one setting and saying why."""

from edgenn.devices import camera
from edgenn.devices.thread_choice import (BLOCK, BLOCK_SECONDS, CLEAR, ROUNDS, SHORT_BLOCK, Setting, ThreadChoice,
                                          candidates)

SSD = "models/tflite_support/coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.tflite"
ALONE, BESIDE = Setting(2, True), Setting(1, False)


def test_candidates_are_every_core_alone_and_all_but_one_beside_the_pipeline():
    assert candidates(4) == [Setting(4, True), Setting(3, False)]
    assert candidates(2) == [ALONE, BESIDE] and candidates(1) == [Setting(1, False)]


def feed(choice, timings):
    """timings: {setting: (seconds a frame, invoke seconds)}; runs frames until the choice is made."""
    while choice.chosen is None:
        choice.record(*timings[choice.setting])
    return choice


def test_the_setting_that_finishes_frames_fastest_is_kept():
    choice = feed(ThreadChoice({ALONE: "two", BESIDE: "one"}), {ALONE: (0.012, 0.011), BESIDE: (0.0144, 0.013)})
    assert choice.chosen == ALONE and choice.model == "two" and list(choice.models) == [ALONE]
    assert choice.frames == BLOCK * (1 + ROUNDS * 2) and "12.0 ms a frame" in choice.why  # a block warms up
    # the model's invoke is shorter with 2 threads but the pipeline around it starves: 1 thread wins
    assert feed(ThreadChoice({ALONE: 2, BESIDE: 1}), {ALONE: (0.0021, 0.0009), BESIDE: (0.0016, 0.0012)}).chosen == BESIDE


def test_a_clearly_slower_setting_is_dropped_after_one_round():
    choice = feed(ThreadChoice({ALONE: 2, BESIDE: 1}), {ALONE: (0.012, 0.011), BESIDE: (0.012 * CLEAR, 0.014)})
    # a warm-up block, a block alone, and on the slow setting its untimed first frame and SHORT_BLOCK more
    assert choice.chosen == ALONE and choice.frames == BLOCK * 2 + 1 + SHORT_BLOCK
    # not as soon as a tiny model's frames show it: its block still lasts BLOCK_SECONDS
    tiny = feed(ThreadChoice({ALONE: 2, BESIDE: 1}), {ALONE: (0.0005, 0.0003), BESIDE: (0.0005 * CLEAR, 0.0004)})
    assert tiny.chosen == ALONE and sum(tiny.frame_times[BESIDE]) >= BLOCK_SECONDS


def test_a_hiccup_on_the_first_frames_of_a_setting_does_not_cut_its_block():
    choice = ThreadChoice({ALONE: 2, BESIDE: 1})
    while choice.setting == ALONE:
        choice.record(0.010, 0.009)
    beside = iter([0.010, 0.030, 0.030] + [0.0101] * 20)  # the untimed switch, two slow frames, then as fast
    while choice.setting == BESIDE and choice.chosen is None:
        choice.record(next(beside), 0.009)
    assert len(choice.frame_times[BESIDE]) == BLOCK - 1 and choice.chosen is None  # a whole block, measured on


def test_blocks_of_a_tiny_model_last_long_enough_to_measure():
    choice = ThreadChoice({ALONE: 2, BESIDE: 1})
    frames = 0
    while choice.setting == ALONE:
        choice.record(0.0005, 0.0003)
        frames += 1
    assert frames - BLOCK - 1 >= BLOCK_SECONDS / 0.0005  # after the warm-up; a block's first frame is not timed


def test_when_the_source_sets_the_pace_the_shorter_invoke_wins():
    choice = feed(ThreadChoice({ALONE: 2, BESIDE: 1}), {ALONE: (0.0333, 0.007), BESIDE: (0.0334, 0.013)})
    assert choice.chosen == ALONE and "same pace" in choice.why


def test_blocks_alternate_after_a_warm_up_and_the_first_frame_of_a_block_is_not_timed():
    choice = ThreadChoice({ALONE: 2, BESIDE: 1})
    seen = []
    for _ in range(3 * BLOCK):
        seen.append(choice.setting)
        choice.record(1.0 if len(seen) % BLOCK == 1 or len(seen) <= BLOCK else 0.01, 0.005)
    assert seen == [ALONE] * BLOCK + [ALONE] * BLOCK + [BESIDE] * BLOCK
    assert max(choice.frame_times[ALONE] + choice.frame_times[BESIDE]) == 0.01


def test_an_unfinished_measurement_says_so():
    choice = ThreadChoice({ALONE: 2, BESIDE: 1})
    choice.record(0.01, 0.005)
    assert "before the measurement" in choice.summary()["why"]
    fixed = ThreadChoice({Setting(3, False): 3}, "--threads").summary()
    assert fixed == {"threads": 3, "serial": False, "why": "--threads"}
    assert ThreadChoice({s: 1 for s in candidates(1)}).summary()["why"] == "one candidate"


def test_camera_measures_threads_on_a_video_and_reports_the_choice(fixtures_dir, tmp_path):
    import cv2
    import numpy as np

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30, (320, 240))
    picture = cv2.resize(cv2.imread(str(fixtures_dir / "images/tflite_support/dogs.jpg")), (320, 240))
    for i in range(60):
        writer.write(np.roll(picture, i, axis=1))
    writer.release()
    logs, indices = [], []
    summary = camera.run_camera(fixtures_dir / SSD, str(video), log=logs.append,
                                on_result=lambda frame, results: indices.append(frame.index))
    assert summary["frames"] == 60 and indices == list(range(60))  # every frame once, in order, across switches
    chosen = Setting(summary["threads"]["threads"], summary["threads"]["serial"])
    assert chosen in candidates(camera.machine_cores())
    assert summary["threads"]["why"].startswith("measured on") and any(line.startswith("threads:") for line in logs)
    given = camera.run_camera(fixtures_dir / SSD, str(video), threads=1, max_frames=5, log=logs.append)
    assert given["threads"]["threads"] == 1 and given["threads"]["why"] == "--threads"


class _Frames:
    """A recorded source of tiny frames (the runner's threads are what is tested, not a camera)."""
    live, fps, name = False, 30, "frames"

    def __init__(self, count):
        self.count, self.read_so_far = count, 0

    def open(self):
        pass

    def close(self):
        pass

    def read(self):
        import numpy as np

        if self.read_so_far >= self.count:
            return None
        self.read_so_far += 1
        return np.zeros((4, 4, 3), np.uint8)


class _SlowModel:
    inputs, outputs = [], []

    def __init__(self, seconds):
        self.seconds = seconds

    def set_input(self, position, array):
        pass

    def invoke(self):
        import time
        time.sleep(self.seconds)


class _SlowTask:
    """Preparation slower than the invoke: a tiny model on big frames, where a frame being prepared when the
    trial switches to the model running alone could overtake or be overtaken."""
    task = "classify"

    def __init__(self, model):
        self.model = model

    def prepare(self, image, order):
        import time
        time.sleep(0.004)
        return None, None

    def decode(self, outputs, context, raw=False):
        return []


def test_frames_stay_in_order_when_the_trial_switches_modes():
    from edgenn.devices.sources import Capture

    for _ in range(3):
        capture = Capture(_Frames(80)).start()
        task = _SlowTask(_SlowModel(0.0005))
        choice = ThreadChoice({ALONE: task.model, BESIDE: _SlowModel(0.0005)})
        handled = []
        runner = camera.CameraRunner(task, capture, thread_choice=choice,
                                     on_result=lambda frame, results: handled.append(frame.index))
        summary = runner.run()
        capture.stop()
        assert handled == list(range(80)) and summary["error"] is None
