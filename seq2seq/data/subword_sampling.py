"""Subword regularization (Kudo, 2018): a sampled segmentation of every training sentence,
drawn again every epoch, with seeds that make a resumed run see the same samples.

tf_text's in-graph sampling draws from a generator of each TensorFlow thread, seeded once per
process, so its samples cannot be reproduced. These samplers call the `sentencepiece` package
instead (inside tf.data, through `tf.numpy_function`): each call seeds SentencePiece's
generator, and a batch encoded with `num_threads=1` runs on a thread of its own, whose
generator starts from that seed. The seed of a batch of lines is drawn from the run's seed, the
epoch and the batch's position in the file, never from the order tf.data happens to run in.

With a restricted vocabulary (`tokenizers.write_used_pieces`), the pieces outside it are marked
unused in the sampler's copy of the model, so that a sample never holds a piece the model has
no id for (what SentencePiece's `SetVocabulary` does, which the Python package lacks). A
character without a piece of its own then becomes an unknown piece of the lattice: a sample
holding one, where the line's best segmentation holds none, is replaced by that segmentation.
"""

import threading
from pathlib import Path

import numpy as np
import sentencepiece as spm
import tensorflow as tf
from sentencepiece import sentencepiece_model_pb2

from seq2seq.data.tokenizers import UNK_ID, kept_piece_ids

LINES_A_CALL = 256  # lines sampled by one call into Python
_SEEDING = threading.Lock()  # SentencePiece's seed is global to the process


class SubwordSampler:
    """Samples segmentations of the SentencePiece model at `model_path`, as ids of its
    (restricted) vocabulary, like `tokenizers.load_tokenizer(model_path)` gives.

    Args:
        alpha: the smoothing exponent of the segmentation probabilities (BPE: the dropout rate).
        nbest_size: sample among the n best segmentations (-1: all of them; unigram only).
    """

    def __init__(self, model_path, alpha, nbest_size):
        model_path = Path(model_path)
        proto = model_path.read_bytes()
        kept = kept_piece_ids(model_path)
        if kept is None:
            kept = range(spm.SentencePieceProcessor(model_proto=proto).get_piece_size())
        self.processor = spm.SentencePieceProcessor(model_proto=_with_unused_pieces(proto, kept))
        to_compact = np.full(self.processor.get_piece_size(), UNK_ID, np.int32)
        to_compact[list(kept)] = np.arange(len(kept), dtype=np.int32)
        self.to_compact = to_compact
        self.alpha = alpha
        self.nbest_size = nbest_size

    def sample(self, lines, seed):
        """Sampled ids of `lines` (a list of str) with `seed` (an int): (flat ids, lengths)."""
        with _SEEDING:
            spm.set_random_generator_seed(int(seed))
            pieces = self.processor.encode(
                lines,
                enable_sampling=True,
                alpha=self.alpha,
                nbest_size=self.nbest_size,
                num_threads=1,
            )
        pieces = self._without_unknown_pieces(lines, pieces)
        lengths = np.array([len(ids) for ids in pieces], np.int64)
        flat = np.zeros(0, np.int32)
        if pieces:
            flat = np.concatenate([np.asarray(ids, np.int32) for ids in pieces])
        return self.to_compact[flat], lengths

    def _without_unknown_pieces(self, lines, pieces):
        """The samples, each one holding an unknown piece that its line's best segmentation
        does not replaced by that (unknown characters are pieces of their own in a lattice)."""
        unknown = [i for i, ids in enumerate(pieces) if UNK_ID in ids]
        if not unknown:
            return pieces
        best = self.processor.encode([lines[i] for i in unknown])
        for i, ids in zip(unknown, best):
            if UNK_ID not in ids:
                pieces[i] = ids
        return pieces

    def tokenize(self, texts, seeds):
        """In-graph: a 1-D string tensor -> ragged int32 ids; `seeds`, an int64 vector, is
        mixed into the one seed of the call."""

        def run(texts, seeds):
            lines = [text.decode("utf-8") for text in texts]
            return self.sample(lines, _mixed_seed(seeds))

        flat, lengths = tf.numpy_function(run, [texts, seeds], [tf.int32, tf.int64], stateful=False)
        flat.set_shape([None])
        lengths.set_shape([None])
        return tf.RaggedTensor.from_row_lengths(flat, lengths)


def _mixed_seed(seeds):
    return int(np.random.SeedSequence([int(s) for s in seeds]).generate_state(1)[0])


def _with_unused_pieces(proto, kept_ids):
    """The model `proto` with every normal piece outside `kept_ids` marked unused."""
    model = sentencepiece_model_pb2.ModelProto()
    model.ParseFromString(proto)
    kept = set(int(i) for i in kept_ids)
    piece = sentencepiece_model_pb2.ModelProto.SentencePiece
    for index, entry in enumerate(model.pieces):
        if entry.type == piece.NORMAL and index not in kept:
            entry.type = piece.UNUSED
    return model.SerializeToString()


def sampled_pairs(pairs, samplers, *, max_source_length, max_target_length, seeds):
    """`pipeline.tokenize_pairs` with sampled segmentations: {"source", "target"} strings ->
    {"source": ids, "target": ids, "*_truncated": bool}, in the order of `pairs`.

    Args:
        samplers: (source, target) `SubwordSampler`s.
        seeds: an int64 vector (the run's seed, the epoch): with a batch's index and side, it
            makes the batch's seed.
    """
    source, target = samplers
    lengths = (max_source_length, max_target_length)

    def encode(index, batch):
        side_seeds = [tf.concat([seeds, [index, side]], 0) for side in (0, 1)]
        texts = (tf.strings.strip(batch["source"]), tf.strings.strip(batch["target"]))
        ids = [s.tokenize(t, k) for s, t, k in zip((source, target), texts, side_seeds)]
        return {
            "source": ids[0][:, : lengths[0]],
            "target": ids[1][:, : lengths[1]],
            "source_truncated": ids[0].row_lengths() > lengths[0],
            "target_truncated": ids[1].row_lengths() > lengths[1],
        }

    batched = pairs.batch(LINES_A_CALL).enumerate()
    return batched.map(encode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()
