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


def cached_dataset(cache, per_keyword, held_out, seed):
    """speech_data.make_dataset, stored as .npz under `cache` so reruns skip espeak-ng."""
    version = hashlib.sha256(Path(speech_data.__file__).read_bytes()).hexdigest()[:10]  # new code, new data
    path = Path(cache) / f"speech_{'heldout' if held_out else 'train'}_{per_keyword}_{seed}_{version}.npz"
    if path.exists():
        data = np.load(path)
        return data["x"], data["y"]
    x, y = speech_data.make_dataset(per_keyword, held_out, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=(x * 32767).astype(np.int16), y=y)  # int16 like a WAV: 4x smaller
    return cached_dataset(cache, per_keyword, held_out, seed)


def features(windows, params):
    fe = FrontEnd(params)
    return np.stack([fe.features(w.astype(np.float32) / 32767) for w in windows])


def build_model(keras, frames, n_features, n_labels):
    """A small GRU: fixed time length, no stateful or bidirectional layers (it must stream)."""
    return keras.Sequential([
        keras.Input((frames, n_features), name="features"),
        keras.layers.Dense(48, activation="relu", name="frame_dense"),
        keras.layers.GRU(64, name="gru"),
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
    x_train, y_train = cached_dataset(args.cache, args.per_keyword, False, args.seed)
    x_eval, y_eval = cached_dataset(args.cache, args.eval_per_keyword, True, args.seed)
    f_train = features(x_train, BASE_PARAMS)
    # One global mean/std (recorded in the front-end) keeps inputs near N(0, 1) for int8 later.
    params = FrontEndParams.from_dict({**BASE_PARAMS.to_dict(), "feature_mean": round(float(f_train.mean()), 4),
                                       "feature_std": round(float(f_train.std()), 4)})
    f_train = (f_train - params.feature_mean) / params.feature_std
    f_eval = features(x_eval, params)
    print(f"data: {len(x_train)} training, {len(x_eval)} held-out windows, {time.time() - start:.0f} s")

    model = build_model(keras, f_train.shape[1], f_train.shape[2], len(speech_data.LABELS))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(f_train, y_train, batch_size=64, epochs=args.epochs, validation_split=0.1, verbose=2,
              callbacks=[keras.callbacks.ReduceLROnPlateau(patience=2, factor=0.5),
                         keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)])
    accuracy = float(np.mean(model.predict(f_eval, verbose=0).argmax(axis=1) == y_eval))
    print(f"held-out voices accuracy: {accuracy:.4f}  (training took {time.time() - start:.0f} s)")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Saved uncompiled: the optimizer state would triple the file and serves no one downstream.
    inference = build_model(keras, f_train.shape[1], f_train.shape[2], len(speech_data.LABELS))
    inference.set_weights(model.get_weights())
    inference.save(out / "speech_commands.keras")
    real = real_clip_predictions(model, params, args.fixtures)
    for name, rows in real.items():
        print(name, [(r["truth"], r["predicted"], r["score"]) for r in rows])
    meta = {
        "name": "speech_commands",
        "labels": list(speech_data.LABELS),
        "input_shape": list(f_train.shape[1:]),
        "frontend": params.to_dict(),
        "seed": args.seed,
        "training_windows": len(x_train),
        "held_out": {"accent": speech_data.HELD_OUT_ACCENT, "variants": list(speech_data.HELD_OUT_VARIANTS),
                     "windows": len(x_eval), "float_accuracy": round(accuracy, 4)},
        "real_speech_commands_clips (report only, never trained or tuned on)": real,
        "command": "python -m training.train_speech " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k in ("seed", "per_keyword", "eval_per_keyword", "epochs")),
        "tensorflow": tf.__version__,
    }
    (out / "speech_commands.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
