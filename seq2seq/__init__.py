"""seq2seq: LSTM encoder-decoder with attention for neural machine translation (Keras 3)."""

__version__ = "0.2.0"
