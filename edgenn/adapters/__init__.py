"""Output decoders: turn a model's raw output tensors into labelled, scored boxes or classes."""
