"""Train edgenn's demo speech-command GRU on espeak-ng keywords; reproducible from --seed.

    python -m training.train_speech            # writes edgenn/demo/speech_commands.{keras,json}

Generated audio is cached under /tmp (never in the repo). Accuracy is measured on voices held
out of training (training/speech_data.py says which). The real Speech Commands clips in the
fixtures are only reported, never used for training or tuning.
"""

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from edgenn.audio_frontend import FrontEnd, FrontEndParams
from edgenn.wav import read_wav
from training import speech_data

REPO = Path(__file__).resolve().parents[1]
# 25 ms windows every 20 ms: 49 frames per 1 s window, 40 log-mel bands.
BASE_PARAMS = FrontEndParams(sample_rate=16000, window_samples=400, hop_samples=320, n_fft=512,
                             n_mels=40, fmin=20.0, fmax=7600.0, log_offset=1e-3)
REAL_CLIPS = {"yes.wav": ["yes"], "down.wav": ["down"], "right_left_up.wav": ["right", "left", "up"],
              "yes_no_go_stop.wav": ["yes", "no", "go", "stop"]}


def cached(cache, kind, per_keyword, held_out, seed):
    """speech_data.make_utterances / make_dataset, stored under `cache` so reruns skip espeak-ng."""
    version = hashlib.sha256(Path(speech_data.__file__).read_bytes()).hexdigest()[:10]  # new code, new data
    path = Path(cache) / f"speech_{kind}_{'heldout' if held_out else 'train'}_{per_keyword}_{seed}_{version}.npz"
    if not path.exists():
        make = speech_data.make_utterances if kind == "utterances" else speech_data.make_dataset
        clips, labels = make(per_keyword, held_out, seed)
        lengths = [len(c) for c in clips]
        pcm = (np.concatenate(clips) * 32767).astype(np.int16)  # like a WAV: 4x smaller than float
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, pcm=pcm, lengths=lengths, labels=labels)
    data = np.load(path)
    clips = np.split(data["pcm"].astype(np.float32) / 32767, np.cumsum(data["lengths"])[:-1])
    return clips, data["labels"]


def features(windows, params):
    fe = FrontEnd(params)
    return np.stack([fe.features(w) for w in windows])


def spec_augment(rng, feats, max_bands=6):
    """Zero (the mean, after normalisation) a random band of mel channels in half of the windows."""
    feats = feats.copy()
    for f in feats[rng.random(len(feats)) < 0.5]:
        width = rng.integers(1, max_bands + 1)
        start = rng.integers(0, f.shape[1] - width + 1)
        f[:, start:start + width] = 0.0
    return feats


def build_model(keras, frames, n_features, n_labels):
    """A small GRU: fixed time length, no stateful or bidirectional layers (it must stream)."""
    return keras.Sequential([
        keras.Input((frames, n_features), name="features"),
        keras.layers.Dense(64, activation="relu", name="frame_dense"),
        keras.layers.GRU(96, name="gru"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(n_labels, activation="softmax", name="scores"),
    ], name="speech_commands")


def real_clip_predictions(model, params, fixtures):
    """Top-1 label and score for each 1 s segment of the real Speech Commands clips (report only)."""
    folder = Path(fixtures) / "audio" / "speech_commands"
    if not folder.is_dir():
        return {}
    fe, report = FrontEnd(params), {}
    for name, words in REAL_CLIPS.items():
        samples, rate = read_wav(folder / name, rate=params.sample_rate)
        batch = np.stack([fe.features(samples[i * rate:(i + 1) * rate]) for i in range(len(words))])
        probs = model.predict(batch, verbose=0)
        report[name] = [{"truth": w, "predicted": speech_data.LABELS[int(p.argmax())], "score": round(float(p.max()), 3)}
                        for w, p in zip(words, probs)]
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-keyword", type=int, default=700, help="training windows per keyword")
    parser.add_argument("--eval-per-keyword", type=int, default=80, help="held-out windows per keyword")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--cache", default="/tmp/edgenn_speech_cache")
    parser.add_argument("--out", default=str(REPO / "edgenn" / "demo"))
    parser.add_argument("--fixtures", default=os.environ.get("EDGENN_FIXTURES", REPO.parent / "shared" / "fixtures"))
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    keras = tf.keras
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()

    start = time.time()
    utterances, y_all = cached(args.cache, "utterances", args.per_keyword, False, args.seed)
    x_eval, y_eval = cached(args.cache, "windows", args.eval_per_keyword, True, args.seed)
    rng = np.random.default_rng(args.seed)
    bank = speech_data.noise_bank(rng)
    n_val = len(utterances) // 10  # training voices, unseen utterances: watched, never used to stop
    f_val = features([speech_data.augment(rng, u, bank) for u in utterances[:n_val]], BASE_PARAMS)
    # One global mean/std (recorded in the front-end) keeps inputs near N(0, 1) for int8 later.
    params = FrontEndParams.from_dict({**BASE_PARAMS.to_dict(), "feature_mean": round(float(f_val.mean()), 4),
                                       "feature_std": round(float(f_val.std()), 4)})
    f_val = (f_val - params.feature_mean) / params.feature_std
    f_eval = features(x_eval, params)
    train, y_train = utterances[n_val:], y_all[n_val:]
    print(f"data: {len(train)} training, {n_val} validation utterances, {len(x_eval)} held-out windows, "
          f"{time.time() - start:.0f} s")

    model = build_model(keras, f_val.shape[1], f_val.shape[2], len(speech_data.LABELS))
    steps = args.epochs * int(np.ceil(len(train) / args.batch))
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(3e-3, steps)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    fe = FrontEnd(params)
    for epoch in range(args.epochs):  # fresh shifts, gains and noise every epoch
        f_train = spec_augment(rng, np.stack([fe.features(speech_data.augment(rng, u, bank)) for u in train]))
        model.fit(f_train, y_train, batch_size=args.batch, epochs=epoch + 1, initial_epoch=epoch,
                  validation_data=(f_val, y_all[:n_val]), verbose=2)
    accuracy = float(np.mean(model.predict(f_eval, verbose=0).argmax(axis=1) == y_eval))
    print(f"held-out voices accuracy: {accuracy:.4f}  (training took {time.time() - start:.0f} s)")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Saved uncompiled: the optimizer state would triple the file and serves no one downstream.
    inference = build_model(keras, f_val.shape[1], f_val.shape[2], len(speech_data.LABELS))
    inference.set_weights(model.get_weights())
    inference.save(out / "speech_commands.keras")
    real = real_clip_predictions(model, params, args.fixtures)
    for name, rows in real.items():
        print(name, [(r["truth"], r["predicted"], r["score"]) for r in rows])
    meta = {
        "name": "speech_commands",
        "labels": list(speech_data.LABELS),
        "input_shape": list(f_val.shape[1:]),
        "frontend": params.to_dict(),
        "seed": args.seed,
        "training_utterances": len(train),
        "held_out": {"accent": speech_data.HELD_OUT_ACCENT, "variants": list(speech_data.HELD_OUT_VARIANTS),
                     "windows": len(x_eval), "float_accuracy": round(accuracy, 4)},
        "real_speech_commands_clips (report only, never trained or tuned on)": real,
        "command": "python -m training.train_speech " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k in ("seed", "per_keyword", "eval_per_keyword", "epochs", "batch")),
        "tensorflow": tf.__version__,
    }
    (out / "speech_commands.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
