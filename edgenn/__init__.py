"""edgenn: Keras models to TFLite bundles, run on live camera and microphone input at the edge."""

__version__ = "0.1.0"
