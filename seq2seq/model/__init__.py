"""The model: an LSTM encoder-decoder with attention, as Keras layers.

- `translator`: the `Translator` model (encoder, bridge, decoder) and `build`;
- `encoder`, `decoder`, `attention` (chosen by name), `input_feeding`: its layers;
- `step`: the step function that decoding runs on, and its typed weights;
- `ensemble`: several translators decoding as one;
- `lstm`, `fused_ops` and `kernels/`: the CPU LSTM loop and the compiled training ops.
"""
