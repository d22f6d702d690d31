"""In-graph translation, string -> string: tokenize, encode, search, detokenize, all TensorFlow ops.

`InGraphTranslator` is what the export serves and what training's evaluations decode with.
"""

import tensorflow as tf

from seq2seq.data.tokenizers import BOS_ID, EOS_ID
from seq2seq.inference import search as search_lib
from seq2seq.inference import top_k
from seq2seq.inference.beam import STOPPING_RULES, beam_search
from seq2seq.inference.forced import forced_decode
from seq2seq.inference.greedy import greedy_search

TEXT_SIGNATURE = [tf.TensorSpec([None], tf.string, name="text")]
OPTIONS_SIGNATURE = [
    *TEXT_SIGNATURE,
    tf.TensorSpec([], tf.int32, name="beam_size"),
    tf.TensorSpec([], tf.float32, name="alpha"),
    tf.TensorSpec([], tf.int32, name="n_best"),
]
PAIR_SIGNATURE = [*TEXT_SIGNATURE, tf.TensorSpec([None], tf.string, name="translation")]
EOS_PIECE = "</s>"  # how `attention` shows the EOS that ends every target


class InGraphTranslator:
    """Tokenize -> encode -> greedy or beam search -> detokenize, all TensorFlow ops.

    Args:
        model: a `seq2seq.model.Translator`.
        source_tokenizer, target_tokenizer: `tensorflow_text.SentencepieceTokenizer`s.
        beam_size: 1 decodes greedily.
        alpha: GNMT length-penalty exponent.
        n_best: hypotheses returned by `translate_nbest` (<= beam_size).
        max_length_ratio, max_length_offset: a sentence of n source pieces gets at most
            ratio * n + offset target pieces (EOS included).
        max_input_length: source pieces kept; longer inputs are truncated (documented).
        stopping: when a sentence's beam search ends, "bound" or "top_beam"
            (`seq2seq.inference.beam`).
    """

    def __init__(
        self,
        model,
        source_tokenizer,
        target_tokenizer,
        *,
        beam_size,
        alpha,
        n_best,
        max_length_ratio,
        max_length_offset,
        max_input_length,
        stopping="bound",
    ):
        if stopping not in STOPPING_RULES:  # before training, not at the first decoding
            raise ValueError(
                f"decode.stopping={stopping!r}: choose one of {sorted(STOPPING_RULES)}"
            )
        self.model = model
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.beam_size = beam_size
        self.alpha = alpha
        self.n_best = n_best
        self.max_length_ratio = max_length_ratio
        self.max_length_offset = max_length_offset
        self.max_input_length = max_input_length
        self.stopping = stopping

    def encode_text(self, text):
        """(batch,) strings -> right-padded source ids (batch, >=1) and their lengths."""
        pieces = self.source_tokenizer.tokenize(tf.strings.strip(text))[:, : self.max_input_length]
        ids = pieces.to_tensor(0)
        ids = tf.pad(ids, [[0, 0], [0, 1 - tf.minimum(tf.shape(ids)[1], 1)]])  # at least 1 column
        return ids, tf.cast(pieces.row_lengths(), tf.int32)

    def max_output_lengths(self, source_lengths):
        lengths = tf.cast(source_lengths, tf.float32) * self.max_length_ratio
        return tf.cast(tf.math.ceil(lengths), tf.int32) + self.max_length_offset

    def search(self, text, beam_size, n_best, alpha):
        """Returns ids (batch, n_best, len), scores (batch, n_best) and source lengths.

        beam_size, n_best and alpha are Python numbers or scalar tensors (chosen at run time);
        beam size 1 decodes greedily.
        """
        ids, lengths = self.encode_text(text)
        state, memory = self.model.encode(ids)
        # The weights are read once, not at every step; the logits come in beam search's chunks.
        step = self.model.decode_step_fn(top_k.CHUNK)
        limits = dict(bos_id=BOS_ID, eos_id=EOS_ID, max_lengths=self.max_output_lengths(lengths))

        def greedy():
            out, scores = greedy_search(step, state, memory, **limits)
            return out[:, None, :], scores[:, None]

        def beam():
            return beam_search(
                step,
                state,
                memory,
                beam_size=beam_size,
                alpha=alpha,
                n_best=n_best,
                stopping=self.stopping,
                **limits,
            )

        if not isinstance(beam_size, int):
            out, scores = tf.cond(tf.equal(beam_size, 1), greedy, beam)
        elif beam_size == 1:
            out, scores = greedy()
        else:
            out, scores = beam()
        return out, scores, lengths

    def encode_target(self, translation):
        """(batch,) strings -> target ids (batch, >=1), EOS included, and their lengths."""
        pieces = self.target_tokenizer.tokenize(tf.strings.strip(translation))
        eos = tf.fill([pieces.nrows(), 1], tf.constant(EOS_ID, pieces.dtype))
        ids = tf.concat([pieces, tf.RaggedTensor.from_tensor(eos)], axis=1)
        return tf.cast(ids.to_tensor(0), tf.int32), tf.cast(ids.row_lengths(), tf.int32)

    def force(self, text, translation, with_attention=False):
        """Forced decoding of `translation` given `text` (`seq2seq.inference.forced`): the
        `Forced` result, source ids and lengths, target ids and lengths."""
        same = tf.debugging.assert_equal(
            tf.size(text), tf.size(translation), message="text and translation differ in length"
        )
        with tf.control_dependencies([same]):
            ids, source_lengths = self.encode_text(text)
        targets, target_lengths = self.encode_target(translation)
        state, memory = self.model.encode(ids)
        step = self.model.decode_step_fn(top_k.CHUNK, with_attention=with_attention)
        settings = search_lib.Settings(BOS_ID, EOS_ID)
        forced = forced_decode(
            step, state, memory, targets, target_lengths, settings, with_attention=with_attention
        )
        return forced, (ids, source_lengths), (targets, target_lengths)

    def score(self, text, translation):
        """The log-probability of each translation (its pieces and EOS) given its text, and that
        divided by the GNMT length penalty with the export's alpha: the score the searches
        report for their hypotheses."""

        def run():
            forced, _, (_, lengths) = self.force(text, translation)
            log_probability = tf.reduce_sum(forced.token_log_probs, axis=1)
            score = log_probability / search_lib.length_penalty(lengths, self.alpha)
            return score, log_probability, forced.token_log_probs, lengths

        def empty():
            return tf.zeros([0]), tf.zeros([0]), tf.zeros([0, 1]), tf.zeros([0], tf.int32)

        out = _unless_empty(text, run, empty)
        return dict(zip(("score", "log_probability", "token_log_probs", "lengths"), out))

    def attention(self, text, translation):
        """The attention weights of forced decoding, (batch, target pieces with EOS, source
        pieces), with the pieces as strings (padded with "") and the lengths."""

        def run():
            forced, (ids, source_lengths), (targets, target_lengths) = self.force(
                text, translation, with_attention=True
            )
            source_width, target_width = tf.shape(ids)[1], tf.shape(targets)[1]
            source = self.source_tokenizer.pieces(tf.strings.strip(text))
            source = _padded(source[:, : self.max_input_length], source_width, "")
            target = self.target_tokenizer.pieces(tf.strings.strip(translation))
            eos = tf.RaggedTensor.from_tensor(tf.fill([target.nrows(), 1], EOS_PIECE))
            target = _padded(tf.concat([target, eos], 1), target_width, "")
            real = tf.range(source_width)[None, None, :] < source_lengths[:, None, None]
            weights = tf.where(real, forced.attention[:, :, :source_width], 0.0)  # blank: none
            return weights, source, target, source_lengths, target_lengths

        def empty():
            strings = tf.zeros([0, 1], tf.string)
            lengths = tf.zeros([0], tf.int32)
            return tf.zeros([0, 1, 1]), strings, strings, lengths, lengths

        names = ("attention", "source_pieces", "target_pieces", "source_lengths", "target_lengths")
        return dict(zip(names, _unless_empty(text, run, empty)))

    def detokenize(self, ids, source_lengths):
        """(batch, len) ids -> strings; an empty (or whitespace-only) input gives ""."""
        text = self.target_tokenizer.detokenize(tf.RaggedTensor.from_tensor(ids, padding=0))
        return tf.where(source_lengths > 0, text, tf.zeros_like(text))

    def translate(self, text):
        def run():
            ids, _, lengths = self.search(text, self.beam_size, 1, self.alpha)
            return self.detokenize(ids[:, 0, :], lengths)

        return {"translation": _unless_empty(text, run, lambda: tf.zeros([0], tf.string))}

    def translate_nbest(self, text):
        return self.translate_options(text, self.beam_size, self.alpha, self.n_best)

    def translate_options(self, text, beam_size, alpha, n_best):
        """n-best translations and scores with decoding settings chosen by the caller."""

        def run():
            ids, scores, lengths = self.search(text, beam_size, n_best, alpha)
            batch, n = tf.shape(ids)[0], tf.shape(ids)[1]
            flat = tf.reshape(ids, [batch * n, -1])
            text_out = self.detokenize(flat, tf.repeat(lengths, n))
            return tf.reshape(text_out, [batch, n]), scores

        def empty():
            return tf.zeros([0, n_best], tf.string), tf.zeros([0, n_best], tf.float32)

        translations, scores = _unless_empty(text, run, empty)
        return {"translations": translations, "scores": scores}


def make_translator(model, tokenizers, decode):
    """The in-graph translator of `model` with the `decode` settings (a `DecodeConfig`)."""
    return InGraphTranslator(
        model,
        *tokenizers,
        beam_size=decode.beam_size,
        alpha=decode.alpha,
        n_best=decode.n_best,
        max_length_ratio=decode.max_length_ratio,
        max_length_offset=decode.max_length_offset,
        max_input_length=decode.max_input_length,
        stopping=decode.stopping,
    )


def _unless_empty(text, run, empty):
    """An empty batch skips the network (whose loops need at least one sentence)."""
    return tf.cond(tf.size(text) > 0, run, empty)


def _padded(ragged, width, value):
    """`ragged` `(batch, None)` as a dense `(batch, width)` tensor (`width` >= its rows)."""
    dense = ragged.to_tensor(value)
    return tf.pad(dense, [[0, 0], [0, width - tf.shape(dense)[1]]], constant_values=value)
