"""SentencePiece subword models: trained on the training split, applied in-graph.

Training uses the `sentencepiece` package; tokenization inside tf.data and inside the exported
SavedModel uses `tensorflow_text.SentencepieceTokenizer`, so the export needs no Python tokenizer.
"""

import logging
import os
import tempfile
from pathlib import Path

import sentencepiece as spm
import tensorflow as tf
import tensorflow_text as tf_text

from seq2seq.files import atomic_write_bytes

log = logging.getLogger(__name__)

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
MODEL_TYPES = ("unigram", "bpe")


def train_sentencepiece(lines, vocab_size, model_type, max_sentences=2_000_000):
    """Trains a SentencePiece model on an iterable of strings and returns its serialized proto.

    Ids 0-3 are pad, unk, bos, eos (pad 0 matches `mask_zero=True` embeddings). The vocabulary
    size is a soft limit (`hard_vocab_limit=False`): a corpus too small for it gets fewer pieces.
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"data.tokenizer.model_type={model_type!r}: choose one of {MODEL_TYPES}")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        count = _write_corpus(lines, corpus)
        if count == 0:
            raise ValueError("cannot train SentencePiece: the training text has no non-empty lines")
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(Path(tmp) / "sp"),
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=1.0,
            hard_vocab_limit=False,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            input_sentence_size=max_sentences,
            shuffle_input_sentence=True,
            num_threads=os.cpu_count() or 1,
            minloglevel=2,
        )
        return (Path(tmp) / "sp.model").read_bytes()


def _write_corpus(lines, path):
    count = 0
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            line = line.strip()
            if line:
                f.write(line + "\n")
                count += 1
    return count


def train_tokenizers(pairs, out_dir, *, vocab_size, model_type, joint):
    """Trains source and target models on (source, target) string pairs; writes them to out_dir.

    Returns the paths of `source.model` and `target.model` (the same bytes when `joint`).
    """
    pairs = list(pairs)
    sources = [s for s, _ in pairs]
    targets = [t for _, t in pairs]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if joint:
        proto = train_sentencepiece(sources + targets, vocab_size, model_type)
        protos = (proto, proto)
    else:
        protos = tuple(train_sentencepiece(x, vocab_size, model_type) for x in (sources, targets))
    paths = (out_dir / "source.model", out_dir / "target.model")
    for path, proto in zip(paths, protos):
        atomic_write_bytes(path, proto)
    log.info(
        "SentencePiece %s models (vocab %d%s) in %s",
        model_type,
        vocab_size,
        ", joint" if joint else "",
        out_dir,
    )
    return paths


def load_tokenizer(model_path):
    """In-graph tokenizer (tf_text) from a SentencePiece model file.

    The name (from the file name) must differ between tokenizers: the SentencePiece kernel
    shares its resource by node name, so in a reloaded SavedModel two tokenizers created under
    the same name would both use the first one's model.
    """
    proto = Path(model_path).read_bytes()
    name = f"{Path(model_path).stem}_sentencepiece"
    return tf_text.SentencepieceTokenizer(model=proto, out_type=tf.int32, name=name)


def vocabulary_size(tokenizer):
    return int(tokenizer.vocab_size())
