"""SentencePiece subword models: trained on the training split, applied in-graph.

Training uses the `sentencepiece` package; tokenization inside tf.data and inside the exported
SavedModel uses `tensorflow_text.SentencepieceTokenizer`, so the export needs no Python tokenizer.

Each side's vocabulary can be restricted to the pieces its training text uses (as OpenNMT's
`onmt_build_vocab` does over a joint model): a joint 8k model on en+de then gives about 4k
English and 5.5k German ids, and the embeddings and the output layer shrink accordingly.
"""

import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import sentencepiece as spm
import tensorflow as tf
import tensorflow_text as tf_text

from seq2seq.files import atomic_write_bytes
from seq2seq.lines import one_line

log = logging.getLogger(__name__)

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
MODEL_TYPES = ("unigram", "bpe")


DEFAULT_MAX_SENTENCES = 300_000
SAMPLING_SEED = 0  # which lines a capped tokenizer sample takes


def train_sentencepiece(lines, vocab_size, model_type, max_sentences=DEFAULT_MAX_SENTENCES):
    """Trains a SentencePiece model on an iterable of strings and returns its serialized proto.

    Ids 0-3 are pad, unk, bos, eos (pad 0 matches `mask_zero=True` embeddings). The vocabulary
    size is a soft limit (`hard_vocab_limit=False`): a corpus too small for it gets fewer pieces.
    """
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        _write_corpus(lines, corpus)
        return train_sentencepiece_files([corpus], vocab_size, model_type, max_sentences)


def train_sentencepiece_files(paths, vocab_size, model_type, max_sentences=DEFAULT_MAX_SENTENCES):
    """`train_sentencepiece` on text files of one sentence a line. At most `max_sentences`
    lines, sampled uniformly with a fixed seed, are read: the trainer's memory is bounded
    whatever the corpus size, and the same text gives the same model."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f"data.tokenizer.model_type={model_type!r}: choose one of {MODEL_TYPES}")
    if not any(Path(p).stat().st_size for p in paths):
        raise ValueError("cannot train SentencePiece: the training text has no non-empty lines")
    if max_sentences < 1:
        raise ValueError(f"data.tokenizer.max_sentences={max_sentences}: must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "sample.txt"
        _sample_lines(paths, max_sentences, sample)
        spm.SentencePieceTrainer.train(
            input=str(sample),
            model_prefix=str(Path(tmp) / "sp"),
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=1.0,
            hard_vocab_limit=False,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            input_sentence_size=0,  # the whole sample
            num_threads=os.cpu_count() or 1,
            minloglevel=2,
        )
        return (Path(tmp) / "sp.model").read_bytes()


def _sample_lines(paths, max_sentences, out_path):
    """Copies `max_sentences` lines of `paths`, drawn uniformly with a fixed seed, to out_path.

    By hand because SentencePiece's own sampling (`input_sentence_size`) draws a different
    sample in every process, even after `set_random_generator_seed` (sentencepiece 0.2.x):
    two runs of one command got different tokenizers, and models that could not be averaged
    or ensembled."""
    total = sum(_count_lines(p) for p in paths)
    rng = np.random.default_rng(SAMPLING_SEED)  # memory of the sample's size, not the corpus's
    chosen = iter(np.sort(rng.choice(total, size=min(max_sentences, total), replace=False)))
    wanted = next(chosen, None)
    index = 0
    with open(out_path, "w", encoding="utf-8") as out:
        for path in paths:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if index == wanted:
                        out.write(line)
                        wanted = next(chosen, None)
                    index += 1


def _count_lines(path):
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)


def _write_corpus(lines, path):
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            line = one_line(line.strip())
            if line:
                f.write(line + "\n")


def _write_sides(pairs, source_path, target_path):
    """Streams (source, target) pairs into one file a side, non-empty lines only."""
    with (
        open(source_path, "w", encoding="utf-8") as src,
        open(target_path, "w", encoding="utf-8") as tgt,
    ):
        for pair in pairs:
            for line, out in zip(pair, (src, tgt)):
                line = one_line(line.strip())
                if line:
                    out.write(line + "\n")


def train_tokenizers(
    pairs,
    out_dir,
    *,
    vocab_size,
    model_type,
    joint,
    restrict_vocabulary=False,
    max_sentences=DEFAULT_MAX_SENTENCES,
):
    """Trains source and target models on (source, target) string pairs; writes them to out_dir.

    Returns the paths of `source.model` and `target.model` (the same bytes when `joint`). With
    `restrict_vocabulary`, also `source.vocab` and `target.vocab`: the pieces each side uses.
    The pairs are streamed through temporary files, never held in memory; each model trains
    on at most `max_sentences` of their lines (the restricted vocabularies read them all).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = (out_dir / "source.model", out_dir / "target.model")
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        sides = (Path(tmp) / "source.txt", Path(tmp) / "target.txt")
        _write_sides(pairs, *sides)
        counts = [_count_lines(side) for side in sides]
        log.info(
            "training SentencePiece %s (vocabulary %d%s) on %d source and %d target lines "
            "(at most %d sampled a model)",
            model_type,
            vocab_size,
            ", joint" if joint else "",
            *counts,
            max_sentences,
        )
        if joint:
            proto = train_sentencepiece_files(sides, vocab_size, model_type, max_sentences)
            protos = (proto, proto)
        else:
            protos = tuple(
                train_sentencepiece_files([side], vocab_size, model_type, max_sentences)
                for side in sides
            )
        if restrict_vocabulary:
            for path, proto, side in zip(paths, protos, sides):
                write_used_pieces(path.with_suffix(".vocab"), proto, side)
        # The models last: a rerun reuses the tokenizers only when both models exist.
        for path, proto in zip(paths, protos):
            atomic_write_bytes(path, proto)
    log.info("SentencePiece models in %s (%.0f s)", out_dir, time.monotonic() - start)
    return paths


def write_used_pieces(path, proto, text_path, chunk=10_000):
    """Writes `<piece>\\t<SentencePiece id>` for the special ids and every piece that the
    lines of `text_path` use (read in chunks)."""
    processor = spm.SentencePieceProcessor(model_proto=proto)
    used = np.zeros(processor.get_piece_size(), bool)
    used[[PAD_ID, UNK_ID, BOS_ID, EOS_ID]] = True
    with open(text_path, encoding="utf-8") as f:
        while lines := [line.rstrip("\n") for _, line in zip(range(chunk), f)]:
            for ids in processor.encode(lines):
                used[ids] = True
    kept = np.flatnonzero(used)
    text = "".join(f"{processor.id_to_piece(int(i))}\t{i}\n" for i in kept)
    atomic_write_bytes(path, text.encode("utf-8"))
    log.info("%s: %d of %d pieces used", path.name, len(kept), len(used))


class SubwordTokenizer(tf.Module):
    """A SentencePiece model (tf_text) whose ids are those of a restricted vocabulary.

    Ids 0-3 are pad, unk, bos, eos; then the kept pieces in SentencePiece order. A piece
    outside the vocabulary is unk. Same methods as `tensorflow_text.SentencepieceTokenizer`
    (`tokenize`, `detokenize`, `id_to_string`, `vocab_size`), so it works in tf.data and in
    the SavedModel (the id maps are constants of the graph).

    Args:
        sentencepiece: a `tensorflow_text.SentencepieceTokenizer`.
        kept_ids: SentencePiece ids of the vocabulary, in order (starting with 0-3).
    """

    def __init__(self, sentencepiece, kept_ids, name=None):
        super().__init__(name=name)
        self.sentencepiece = sentencepiece
        kept = np.asarray(kept_ids, np.int32)
        to_compact = np.full(int(sentencepiece.vocab_size()), UNK_ID, np.int32)
        to_compact[kept] = np.arange(len(kept), dtype=np.int32)
        self.size = len(kept)
        self.to_compact = tf.constant(to_compact)
        self.to_sentencepiece = tf.constant(kept)

    def tokenize(self, text):
        return _map_ids(self.sentencepiece.tokenize(text), self.to_compact)

    def detokenize(self, ids):
        return self.sentencepiece.detokenize(_map_ids(ids, self.to_sentencepiece))

    def id_to_string(self, ids):
        return self.sentencepiece.id_to_string(tf.gather(self.to_sentencepiece, ids))

    def pieces(self, text):
        """The SentencePiece pieces of `text` as strings (ragged), one per id of `tokenize`; a
        piece outside the vocabulary is shown as itself, not as unk."""
        return self.sentencepiece.id_to_string(self.sentencepiece.tokenize(text))

    def vocab_size(self):
        return tf.constant(self.size, tf.int32)


def _map_ids(ids, table):
    if isinstance(ids, tf.RaggedTensor):
        return ids.with_flat_values(tf.gather(table, ids.flat_values))
    return tf.gather(table, ids)


def load_tokenizer(model_path):
    """In-graph tokenizer from a SentencePiece model file, restricted to the pieces listed in
    the `.vocab` file beside it if there is one.

    The name (from the file name) must differ between tokenizers: the SentencePiece kernel
    shares its resource by node name, so in a reloaded SavedModel two tokenizers created under
    the same name would both use the first one's model.
    """
    model_path = Path(model_path)
    name = f"{model_path.stem}_sentencepiece"
    sentencepiece = tf_text.SentencepieceTokenizer(
        model=model_path.read_bytes(), out_type=tf.int32, name=name
    )
    kept = kept_piece_ids(model_path)
    if kept is None:
        kept = range(int(sentencepiece.vocab_size()))
    return SubwordTokenizer(sentencepiece, kept, name=f"{model_path.stem}_tokenizer")


def kept_piece_ids(model_path):
    """The SentencePiece ids of the vocabulary that the `.vocab` file beside `model_path`
    lists, in order; None without one (the whole model is the vocabulary)."""
    vocab = Path(model_path).with_suffix(".vocab")
    if not vocab.exists():
        return None
    # Split on "\n" only: a piece may hold a character that str.splitlines breaks at.
    lines = vocab.read_text(encoding="utf-8").removesuffix("\n").split("\n")
    return [int(line.rsplit("\t", 1)[1]) for line in lines]


def vocabulary_size(tokenizer):
    return int(tokenizer.vocab_size())


def prepare_tokenizers(train_split, out_dir, **options):
    """Trains SentencePiece on the training split, or reuses the models already in out_dir.
    `options`: those of `tokenizers.train_tokenizers` (data.tokenizer.*)."""
    paths = (Path(out_dir) / "source.model", Path(out_dir) / "target.model")
    if all(p.exists() for p in paths):
        log.info("SentencePiece models reused from %s", out_dir)
    else:
        paths = train_tokenizers(_string_pairs(train_split), out_dir, **options)
    return tuple(load_tokenizer(p) for p in paths), paths


def _string_pairs(split, chunk=4096):
    """(source, target) Python strings of a split, read a chunk at a time (much faster than one
    pair at a time)."""
    for batch in split.batch(chunk).as_numpy_iterator():
        for source, target in zip(batch["source"], batch["target"]):
            yield source.decode("utf-8"), target.decode("utf-8")
