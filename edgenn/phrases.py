"""CTC phrase decoding (numpy only): per-frame scores of a phrase model -> words, phrases, grammar matches.

A phrase model scores every 20 ms frame over a vocabulary that holds the CTC blank, the command words
and optionally filler tokens (labels starting with "_": any other word). Greedy decoding takes the best
token of each frame, merges repeats and drops blanks; fillers are heard but never part of the text.

    greedy_tokens([0, 3, 3, 0, 0, 5, 0], blank=0)  -> [3, 5]
    word_errors(["go", "left"], ["go"])              -> 1   (substitutions + deletions + insertions)
    grammar = Grammar.load("phrases.txt", words)    # words: the model's vocabulary (the manifest's decoder)
    grammar.match(log_probs, labels, blank, heard_tokens) -> (["go", "left"], log-likelihood) or (None, ...)
"""

from pathlib import Path

import numpy as np

from edgenn.errors import EdgennError

NEG = -1e30  # log(0) that survives additions


def greedy_tokens(best, blank):
    """Token ids from per-frame best ids: repeats merged, blanks dropped (a blank separates a doubled word)."""
    best = np.asarray(best)
    if not len(best):
        return []
    changes = np.flatnonzero(np.diff(best, prepend=-1) != 0)  # ids are >= 0: the first frame is a change
    return [int(best[i]) for i in changes if best[i] != blank]


def heard_tokens(scores, blank, ignored):
    """Greedy decoding of frame scores [T, classes] without the `ignored` tokens (blank, fillers)."""
    return [t for t in greedy_tokens(np.asarray(scores).argmax(-1), blank) if t not in ignored]


def phrase_errors(scores, truths, blank, ignored):
    """(word error rate, whole-phrase accuracy) of greedy decoding of [N, T, classes] scores against the token
    lists said (the `ignored` tokens - blank, fillers - left out of both)."""
    errors = words = right = 0
    for frames, truth in zip(scores, truths):
        truth = [t for t in truth if t not in ignored]
        heard = heard_tokens(frames, blank, ignored)
        errors += word_errors(truth, heard)
        words += len(truth)
        right += heard == truth
    return errors / max(words, 1), right / max(len(truths), 1)


def word_errors(truth, heard):
    """Levenshtein distance between two word (or token) sequences."""
    previous = list(range(len(heard) + 1))
    for i, word in enumerate(truth, 1):
        current = [i]
        for j, other in enumerate(heard, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other)))
        previous = current
    return previous[-1]


def ctc_log_likelihood(log_probs, tokens, blank):
    """log P(tokens | frames) summed over every CTC alignment (forward algorithm); log_probs [T, classes]."""
    log_probs = np.asarray(log_probs, np.float64)
    if not len(log_probs):
        return 0.0 if not len(tokens) else NEG
    extended = np.full(2 * len(tokens) + 1, blank)
    extended[1::2] = tokens
    n = len(extended)
    # a state may skip the blank before it when its token differs from the token two states back
    skip = np.zeros(n, bool)
    skip[3::2] = extended[3::2] != extended[1:-2:2]
    alpha = np.full(n, NEG)
    alpha[0] = log_probs[0, blank]
    if n > 1:
        alpha[1] = log_probs[0, extended[1]]
    for frame in log_probs[1:]:
        stay = alpha
        step = np.concatenate([[NEG], alpha[:-1]])
        jump = np.full(n, NEG)
        jump[2:] = np.where(skip[2:], alpha[:-2], NEG)
        alpha = np.logaddexp(np.logaddexp(stay, step), jump) + frame[extended]
    return float(np.logaddexp(alpha[-1], alpha[-2]) if n > 1 else alpha[-1])


class Grammar:
    """The allowed phrases: one a line (words of the model's vocabulary), '#' comments and blank lines skipped.

    match() scores every allowed phrase against the frames of what was heard (CTC forward) and picks the
    likeliest. It answers None (something outside the grammar was said) unless that phrase is near what greedy
    decoding heard: at most one word in two differs, or the model found it almost as likely (within `margin`
    nats: it was unsure between them)."""

    def __init__(self, phrases, words, margin=3.0):
        self.phrases = [tuple(p) for p in phrases]
        self.words, self.margin = set(words), margin
        self.unfinished = {p[:n] for p in self.phrases for n in range(1, len(p))} - set(self.phrases)

    @classmethod
    def load(cls, path, words):
        """The grammar in PATH; every word must be one of `words` (the model's vocabulary, no blank or filler)."""
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise EdgennError(f"--grammar {path}: cannot read it ({getattr(exc, 'strerror', None) or exc}); give a "
                              "text file with one allowed phrase a line") from None
        phrases = [line.split("#")[0].split() for line in lines]
        phrases = [phrase for phrase in phrases if phrase]
        for number, phrase in enumerate(phrases, 1):
            unknown = [w for w in phrase if w not in words]
            if unknown:
                raise EdgennError(f"--grammar {path}: {', '.join(unknown)} not in the model's vocabulary "
                                  f"({', '.join(words)}); fix line {number}")
        if not phrases:
            raise EdgennError(f"--grammar {path}: no phrases in it; write one allowed phrase a line, e.g. 'go left'")
        return cls(phrases, words)

    def expects_more(self, words):
        """The words begin an allowed phrase and are none by themselves ("go" where only "go left" is allowed):
        a pause after them is more likely a slow speaker than the end."""
        return tuple(words) in self.unfinished

    def match(self, log_probs, vocabulary, blank, heard_tokens):
        """(phrase words or None, its log-likelihood) for the frames [T, classes] of one heard phrase."""
        index = {word: i for i, word in enumerate(vocabulary)}
        scores = [ctc_log_likelihood(log_probs, [index[w] for w in phrase], blank) for phrase in self.phrases]
        best = int(np.argmax(scores))
        heard = ctc_log_likelihood(log_probs, heard_tokens, blank)
        words = [vocabulary[t] for t in heard_tokens if vocabulary[t] in self.words]  # fillers are not words
        near = word_errors(words, self.phrases[best]) <= len(self.phrases[best]) // 2
        possible = scores[best] > NEG / 2  # too few frames for it: not a match, however near
        allowed = possible and (near or scores[best] >= heard - self.margin)
        return (list(self.phrases[best]) if allowed else None), scores[best]


class StreamingDecoder:
    """Greedy CTC decoding frame by frame, with endpointing: a phrase ends once a word was heard and it has been
    quiet for `pause` frames (the speech flag comes from the caller's activity detector; `maybe`: it cannot
    tell yet, so no pause ends there), or no word came for `word_gap` frames (noise that is never quiet), or
    it reaches `max_frames`. `unfinished(tokens)`, when given, says the words so far need more (a grammar's
    prefix): then no pause ends it, only `word_gap` or `max_frames`. update() returns the finished phrase as
    [(frame, token, peak score)], else None."""

    def __init__(self, blank, pause, max_frames, word_gap=None, unfinished=None):
        self.blank, self.pause, self.max_frames = blank, pause, max_frames
        self.word_gap = word_gap or max_frames
        self.unfinished = unfinished
        self.best = blank
        self.tokens = []
        self.last_speech = -10 ** 9

    @property
    def open(self):
        """A word was heard and the phrase has not ended yet."""
        return bool(self.tokens)

    def finish(self):
        """The phrase heard so far, ended now (or None)."""
        finished, self.tokens = self.tokens, []
        return finished or None

    def update(self, frame, scores, speech, maybe=False):
        if speech:
            self.last_speech = frame
        best = int(np.argmax(scores))
        if best != self.blank and best != self.best:
            self.tokens.append((frame, best, float(scores[best])))
        elif best != self.blank and self.tokens and self.tokens[-1][1] == best:
            last = self.tokens[-1]
            self.tokens[-1] = (last[0], best, max(last[2], float(scores[best])))
        self.best = best
        if not self.tokens:
            return None
        quiet = frame - max(self.last_speech, self.tokens[-1][0])  # a word heard is speech, whatever the level
        paused = quiet >= self.pause and not maybe and not (self.unfinished and self.unfinished(self.tokens))
        if paused or frame - self.tokens[-1][0] >= self.word_gap or \
                frame - self.tokens[0][0] >= self.max_frames - 1:
            return self.finish()
        return None
