"""Data: corpora as TFDS splits of {"source", "target"} strings, SentencePiece, tf.data batches.

- `sources`: the registry of data sources (`data.source`) and `load_splits`;
- `numbers`, `multi30k`, `parallel_text`, `catalog`: their TFDS builders;
- `tokenizers`: SentencePiece models, trained on the training split, applied in-graph;
- `pipeline`: strings -> subword ids -> length-sorted, right-padded training batches.
"""
