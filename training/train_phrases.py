"""Train edgenn's demo phrase model: a streaming CTC CRNN that hears 1-4 command words in a row.

    python -m training.train_phrases          # writes edgenn/demo/speech_phrases.{keras,json}

Data (training/phrase_data.py): phrases of ONE training speaker made of their own real Speech Commands
clips (Speech Commands dataset by Pete Warden / Google, CC BY 4.0), 0.05-0.4 s gaps, the keyword recipe's
augmentation and real background noise; other words appear as a filler token, beside commands and, in a
share of the phrases (--others-only, a tenth), alone (speech that is no command: a model that never heard
any finds commands in most of it). The split is the keyword model's (by speaker); word error rate is
watched on dev speakers and reported on test speakers.

Model: causal Conv1D over 5 frames + unidirectional GRUs (--gru-layers, two), a score per 20 ms frame over
the blank, the ten command words and the filler; CTC loss. Conv1D and the first GRU start from the keyword
model's weights (trained on the same training speakers), which halves the time CTC needs to leave the
all-blank plateau.
"""

import argparse
import json
import os
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from edgenn.audio_frontend import FrontEnd, FrontEndParams
from edgenn.phrases import phrase_errors
from training import phrase_data, real_speech

REPO = Path(__file__).resolve().parents[1]
KEYWORD_MODEL = REPO / "edgenn" / "demo" / "speech_commands.keras"

_worker = {}


def _init_worker(split, fixtures, params, seconds, augment, others_only):
    _worker.update(speakers=phrase_data.speaker_words(split, fixtures), frontend=FrontEnd(params),
                   noises=real_speech.background_noise("train" if augment else "held_out", fixtures),
                   seconds=seconds, others_only=others_only)


def _phrases(job):
    """Features [count, frames, 40] float16 and token lists of `count` phrases of random speakers."""
    count, seed = job
    rng = np.random.default_rng(seed)
    names = sorted(_worker["speakers"])
    feats, tokens = [], []
    for _ in range(count):
        samples, words = phrase_data.training_phrase(rng, _worker["speakers"][names[rng.integers(len(names))]],
                                                     _worker["noises"], _worker["seconds"],
                                                     others_only_share=_worker["others_only"])
        feats.append(_worker["frontend"].features(samples))
        tokens.append(words)
    return np.asarray(feats, np.float16), tokens


def phrase_set(split, count, seed, fixtures, params, seconds, others_only=0.0, workers=2):
    jobs = [(min(250, count - start), [seed, start]) for start in range(0, count, 250)]
    with Pool(workers, _init_worker, (split, fixtures, params, seconds, split == "train", others_only)) as pool:
        parts = pool.map(_phrases, jobs)
    return np.concatenate([f for f, _ in parts]), [t for _, ts in parts for t in ts]


def build_model(keras, n_features, n_tokens, gru_layers=1, units=128):
    """Causal and unidirectional throughout, so the converter can make a streaming step model of it. The first
    GRU has the keyword model's 128 units; `units` sizes the ones after it."""
    more = [keras.layers.GRU(units, return_sequences=True, name=f"gru{i + 2}") for i in range(gru_layers - 1)]
    return keras.Sequential([
        keras.Input((None, n_features), name="features"),
        keras.layers.Conv1D(64, 5, padding="causal", activation="relu", name="conv"),
        keras.layers.GRU(128, return_sequences=True, name="gru"),
        *more,
        keras.layers.Dropout(0.2),
        keras.layers.Dense(n_tokens, activation="softmax", name="scores"),
    ], name="speech_phrases")


def word_error_rate(model, feats, tokens):
    """(WER, phrase accuracy) of greedy CTC decoding, filler tokens dropped, as edgenn listen decodes."""
    blank = phrase_data.VOCABULARY.index(phrase_data.BLANK)
    probs = model.predict(feats.astype(np.float32), verbose=0, batch_size=64)
    return phrase_errors(probs, tokens, blank, {blank, phrase_data.VOCABULARY.index(phrase_data.FILLER)})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--phrases", type=int, default=16000, help="augmented training phrases")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of a training phrase window")
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--gru-layers", type=int, default=2, help="the first starts from the keyword model "
                        "(1: WER ~2 pp worse on dev streams; 3: slower to converge)")
    parser.add_argument("--units", type=int, default=128, help="units of the GRU layers after the first "
                        "(256: no better on dev streams, 2.3x the training time)")
    parser.add_argument("--others-only", type=float, default=0.1, help="share of training phrases that are "
                        "other words alone, no command (0: 2.2x the false commands on other speech; 0.2: 1-2 "
                        "points fewer phrases right)")
    parser.add_argument("--out", default=str(REPO / "edgenn" / "demo"))
    parser.add_argument("--fixtures", default=os.environ.get("EDGENN_FIXTURES", REPO.parent / "shared" / "fixtures"))
    args = parser.parse_args()

    start = time.time()
    keyword_meta = json.loads(KEYWORD_MODEL.with_suffix(".json").read_text())
    params = FrontEndParams.from_dict(keyword_meta["frontend"])  # same features, normalisation included
    feats, tokens = phrase_set("train", args.phrases, args.seed, args.fixtures, params, args.seconds, args.others_only)
    f_dev, t_dev = phrase_set("dev", 400, 1, args.fixtures, params, args.seconds)
    f_test, t_test = phrase_set("test", 400, 2, args.fixtures, params, args.seconds)
    print(f"data: {len(feats)} training phrases ({sum(map(len, tokens))} words), {time.time() - start:.0f} s",
          flush=True)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    keras = tf.keras
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(args.seed)

    n_tokens = len(phrase_data.VOCABULARY)
    model = build_model(keras, feats.shape[2], n_tokens, args.gru_layers, args.units)
    keyword_model = keras.models.load_model(KEYWORD_MODEL, compile=False)
    for name in ("conv", "gru"):
        model.get_layer(name).set_weights(keyword_model.get_layer(name).get_weights())

    steps_per_epoch = int(np.ceil(len(feats) / args.batch))
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, args.epochs * steps_per_epoch),
                                      clipnorm=5.0)
    width = max(map(len, tokens))
    labels = np.zeros((len(tokens), width), np.int32)
    for i, t in enumerate(tokens):
        labels[i, :len(t)] = t
    label_length = np.array([len(t) for t in tokens], np.int32)

    @tf.function(reduce_retracing=True)
    def train_step(x, y, y_length):
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            frames = tf.fill([tf.shape(x)[0]], tf.shape(probs)[1])
            loss = tf.reduce_mean(tf.nn.ctc_loss(y, tf.math.log(probs + 1e-7), y_length, frames,
                                                 logits_time_major=False, blank_index=0))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    rng = np.random.default_rng(args.seed)
    for epoch in range(args.epochs):
        masked = real_speech.spec_augment(rng, feats.astype(np.float32), max_time=5)
        order = rng.permutation(len(feats))
        losses = []
        for first in range(0, len(order), args.batch):
            pick = order[first:first + args.batch]
            losses.append(float(train_step(masked[pick], labels[pick], label_length[pick])))
        wer, phrase = word_error_rate(model, f_dev, t_dev)
        print(f"epoch {epoch + 1}: loss {np.mean(losses):.3f}, dev speakers WER {wer:.4f}, phrase accuracy "
              f"{phrase:.4f} ({time.time() - start:.0f} s)", flush=True)
    dev, test = word_error_rate(model, f_dev, t_dev), word_error_rate(model, f_test, t_test)
    print(f"float: dev WER {dev[0]:.4f} / phrases {dev[1]:.4f}; test WER {test[0]:.4f} / phrases {test[1]:.4f}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    inference = build_model(keras, feats.shape[2], n_tokens, args.gru_layers, args.units)
    inference.set_weights(model.get_weights())
    inference.save(out / "speech_phrases.keras")
    meta = {
        "name": "speech_phrases",
        "task": "phrases",
        "labels": list(phrase_data.VOCABULARY),
        "blank_index": 0,
        "filler": [phrase_data.FILLER],
        "input_shape": [int(feats.shape[1]), int(feats.shape[2])],
        "frontend": params.to_dict(),
        "seed": args.seed,
        "data": {"real": real_speech.CREDIT, "training_phrases": len(feats),
                 "training_speakers": "the keyword model's training speakers (training/real_speech.py SPLITS)",
                 "phrase": "1-4 words of one speaker, 0.05-0.4 s gaps, real background noise 0-25 dB SNR"},
        "provenance": {"training_data": f"phrases made of real clips: {real_speech.CREDIT}",
                       "initialised_from": "edgenn/demo/speech_commands.keras (Conv1D and GRU)"},
        "float_word_error_rate": {"dev_speakers": round(dev[0], 4), "dev_phrase_accuracy": round(dev[1], 4),
                                  "test_speakers": round(test[0], 4), "test_phrase_accuracy": round(test[1], 4),
                                  "phrases": 400},
        "command": "python -m training.train_phrases " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
            if k in ("seed", "phrases", "seconds", "epochs", "batch", "gru_layers", "units", "others_only")),
        "training_seconds": round(time.time() - start),
        "tensorflow": tf.__version__,
    }
    (out / "speech_phrases.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
