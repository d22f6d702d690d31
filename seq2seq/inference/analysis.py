"""What the export computes for translations it is given: scores, attention, word alignments.

`TranslationAnalysis` is the part of `InGraphTranslator` (`seq2seq.inference.translator`) that
feeds a translation through the model (`seq2seq.inference.forced`) instead of searching for one.
"""

import functools

import tensorflow as tf

from seq2seq.data.tokenizers import BOS_ID, EOS_ID
from seq2seq.inference import alignment, search, top_k
from seq2seq.inference.forced import forced_decode

PAIR_SIGNATURE = [
    tf.TensorSpec([None], tf.string, name="text"),
    tf.TensorSpec([None], tf.string, name="translation"),
]
EOS_PIECE = "</s>"  # how `attention` shows the EOS that ends every target


class TranslationAnalysis:
    """Scores, attention and alignments of given translations; a base of `InGraphTranslator`,
    whose model, tokenizers and settings it uses."""

    def encode_target(self, translation):
        """(batch,) strings -> target ids (batch, >=1), EOS included, and their lengths."""
        pieces = self.target_tokenizer.tokenize(tf.strings.strip(translation))
        eos = tf.fill([pieces.nrows(), 1], tf.constant(EOS_ID, pieces.dtype))
        ids = tf.concat([pieces, tf.RaggedTensor.from_tensor(eos)], axis=1)
        return tf.cast(ids.to_tensor(0), tf.int32), tf.cast(ids.row_lengths(), tf.int32)

    def force(self, text, translation, with_attention=False):
        """Forced decoding of `translation` given `text`, under the export's `min_length` and
        `no_repeat_ngram_size` (the distribution its searches draw from): the `Forced` result,
        source ids and lengths, target ids and lengths."""
        same = tf.debugging.assert_equal(
            tf.size(text), tf.size(translation), message="text and translation differ in length"
        )
        with tf.control_dependencies([same]):
            ids, source_lengths = self.encode_text(text)
        targets, target_lengths = self.encode_target(translation)
        state, memory = self.model.encode(ids)
        step = self.model.decode_step_fn(top_k.CHUNK, with_attention=with_attention)
        settings = search.Settings(
            BOS_ID,
            EOS_ID,
            min_length=self.min_length,
            no_repeat_ngram_size=self.no_repeat_ngram_size,
        )
        forced = forced_decode(
            step, state, memory, targets, target_lengths, settings, with_attention=with_attention
        )
        return forced, (ids, source_lengths), (targets, target_lengths)

    @functools.cached_property
    def forced_outputs(self):
        """`_forced_outputs` as one `tf.function`: the export's score, attention and align
        signatures call it, so that its graph is stored once, not three times."""
        return tf.function(self._forced_outputs, input_signature=PAIR_SIGNATURE)

    def _forced_outputs(self, text, translation):
        """Forced decoding's per-piece log-probabilities and attention weights (0 at padding),
        the pieces as strings (padded with "") and the lengths; a non-empty batch."""
        forced, (ids, source_lengths), (targets, target_lengths) = self.force(
            text, translation, with_attention=True
        )
        source_width, target_width = tf.shape(ids)[1], tf.shape(targets)[1]
        source = self.source_tokenizer.pieces(tf.strings.strip(text))
        source = padded(source[:, : self.max_input_length], source_width, "")
        target = self.target_tokenizer.pieces(tf.strings.strip(translation))
        eos = tf.RaggedTensor.from_tensor(tf.fill([target.nrows(), 1], EOS_PIECE))
        target = padded(tf.concat([target, eos], 1), target_width, "")
        real = tf.range(source_width)[None, None, :] < source_lengths[:, None, None]
        return {
            "token_log_probs": forced.token_log_probs,
            "attention": tf.where(real, forced.attention[:, :, :source_width], 0.0),  # blank: 0
            "source_pieces": source,
            "target_pieces": target,
            "source_lengths": source_lengths,
            "target_lengths": target_lengths,
        }

    def score(self, text, translation):
        """The log-probability of each translation (its pieces and EOS) given its text, and that
        divided by the GNMT length penalty with the export's alpha: the score the searches
        report for their hypotheses."""

        def run():
            out = self.forced_outputs(text, translation)
            log_probability = tf.reduce_sum(out["token_log_probs"], axis=1)
            lengths = out["target_lengths"]
            score = log_probability / search.length_penalty(lengths, self.alpha)
            return score, log_probability, out["token_log_probs"], lengths

        def empty():
            return tf.zeros([0]), tf.zeros([0]), tf.zeros([0, 1]), tf.zeros([0], tf.int32)

        out = unless_empty(text, run, empty)
        return dict(zip(("score", "log_probability", "token_log_probs", "lengths"), out))

    def attention(self, text, translation):
        """The attention weights of forced decoding, (batch, target pieces with EOS, source
        pieces), with the pieces as strings (padded with "") and the lengths."""
        names = ("attention", "source_pieces", "target_pieces", "source_lengths", "target_lengths")

        def run():
            out = self.forced_outputs(text, translation)
            return tuple(out[name] for name in names)

        return dict(zip(names, unless_empty(text, run, _empty_attention)))

    def align(self, text, translation):
        """Pharaoh `i-j` word alignments of each translation with its text (`alignment`)."""

        def run():
            out = self.forced_outputs(text, translation)
            source, target = out["source_pieces"], out["target_pieces"]
            source_words, target_words = (alignment.word_counts(t) for t in (text, translation))
            source_real = tf.range(tf.shape(source)[1])[None, :] < out["source_lengths"][:, None]
            # the EOS row aligns with no word
            target_lengths = out["target_lengths"][:, None]
            target_real = tf.range(tf.shape(target)[1])[None, :] < target_lengths - 1
            source = (alignment.word_indices(source, source_words), source_real)
            target = (alignment.word_indices(target, target_words), target_real)
            words = alignment.word_attention(out["attention"], source, target)
            return alignment.pharaoh(words, source_words, target_words)

        return {"alignment": unless_empty(text, run, lambda: tf.zeros([0], tf.string))}


def _empty_attention():
    strings, lengths = tf.zeros([0, 1], tf.string), tf.zeros([0], tf.int32)
    return tf.zeros([0, 1, 1]), strings, strings, lengths, lengths


def padded(ragged, width, value):
    """`ragged` `(batch, None)` as a dense `(batch, width)` tensor (`width` >= its rows)."""
    dense = ragged.to_tensor(value)
    return tf.pad(dense, [[0, 0], [0, width - tf.shape(dense)[1]]], constant_values=value)


def unless_empty(text, run, empty):
    """An empty batch skips the network (whose loops need at least one sentence)."""
    return tf.cond(tf.size(text) > 0, run, empty)
