"""Subword regularization (Kudo, 2018): a sampled segmentation of every training sentence,
drawn again every epoch, with seeds that make a resumed run see the same samples.

Each sentence's segmentation is drawn from its `nbest_size` best segmentations under the
unigram model, with probabilities proportional to P(segmentation)^alpha (what SentencePiece's
`SampleEncode` does with an n-best size). SentencePiece's own sampling could not be used: its
generator is per thread, and seeded with the thread too: the same seed gave other samples in
every process (sentencepiece 0.2.3), as tf_text's in-graph sampling does. Here SentencePiece
only lists the n best segmentations (deterministic), and NumPy draws among them, with a seed
made of the run's seed, the epoch and the position in the file of the batch of lines (never of
the order tf.data happens to run in).

With a restricted vocabulary (`tokenizers.write_used_pieces`), the pieces outside it are marked
unused in the sampler's copy of the model, so that a sample never holds a piece the model has
no id for (what SentencePiece's `SetVocabulary` does, which the Python package lacks). A
character without a piece of its own then becomes an unknown piece: segmentations holding one,
where the best holds none, are not drawn.
"""

from pathlib import Path

import numpy as np
import sentencepiece as spm
import tensorflow as tf
from sentencepiece import sentencepiece_model_pb2

from seq2seq.data.tokenizers import UNK_ID, kept_piece_ids

LINES_A_CALL = 256  # lines sampled by one call into Python


class SubwordSampler:
    """Samples segmentations of the unigram SentencePiece model at `model_path`, as ids of its
    (restricted) vocabulary, like `tokenizers.load_tokenizer(model_path)` gives.

    Args:
        alpha: the exponent of the segmentations' probabilities (smaller: flatter).
        nbest_size: how many of the best segmentations of a sentence are drawn from (>= 2).
    """

    def __init__(self, model_path, alpha, nbest_size):
        model_path = Path(model_path)
        proto = model_path.read_bytes()
        kept = kept_piece_ids(model_path)
        if kept is None:
            kept = range(spm.SentencePieceProcessor(model_proto=proto).get_piece_size())
        self.processor = spm.SentencePieceProcessor(model_proto=_with_unused_pieces(proto, kept))
        size = self.processor.get_piece_size()
        self.scores = np.array([self.processor.get_score(i) for i in range(size)], np.float64)
        to_compact = np.full(size, UNK_ID, np.int32)
        to_compact[list(kept)] = np.arange(len(kept), dtype=np.int32)
        self.to_compact = to_compact
        self.alpha = alpha
        self.nbest_size = nbest_size

    def sample(self, lines, seed):
        """Sampled ids of `lines` (a list of str) with `seed` (an int): (flat ids, lengths)."""
        rng = np.random.default_rng(seed)
        candidates = self.processor.nbest_encode(lines, nbest_size=self.nbest_size)
        pieces = [self._draw(segmentations, rng) for segmentations in candidates]
        lengths = np.array([len(ids) for ids in pieces], np.int64)
        flat = np.zeros(0, np.int32)
        if pieces:
            flat = np.concatenate([np.asarray(ids, np.int32) for ids in pieces])
        return self.to_compact[flat], lengths

    def _draw(self, segmentations, rng):
        """One of a sentence's n best segmentations (best first), drawn with probabilities
        proportional to exp(alpha * log P); none with an unknown piece the best lacks."""
        if not segmentations:
            return []
        best = segmentations[0]
        if UNK_ID not in best:
            segmentations = [ids for ids in segmentations if UNK_ID not in ids]
        log_p = np.array([self.scores[ids].sum() for ids in segmentations]) * self.alpha
        p = np.exp(log_p - log_p.max())
        return segmentations[rng.choice(len(segmentations), p=p / p.sum())]

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
    return np.random.SeedSequence([int(s) for s in seeds])


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
