"""In-graph translation, string -> string: tokenize, encode, search, detokenize, all TensorFlow ops.

`InGraphTranslator` is what the export serves and what training's evaluations decode with; its
base `TranslationAnalysis` (`seq2seq.inference.analysis`) scores and aligns given translations.
"""

import tensorflow as tf

from seq2seq.data.tokenizers import BOS_ID, EOS_ID
from seq2seq.inference import sampling, search
from seq2seq.inference.analysis import PAIR_SIGNATURE, TranslationAnalysis, unless_empty
from seq2seq.inference.beam import STOPPING_RULES, beam_search
from seq2seq.inference.constraints import Prefix
from seq2seq.inference.greedy import greedy_search
from seq2seq.inference.top_k import CHUNK

TEXT_SIGNATURE = [tf.TensorSpec([None], tf.string, name="text")]
OPTIONS_SIGNATURE = [
    *TEXT_SIGNATURE,
    tf.TensorSpec([], tf.int32, name="beam_size"),
    tf.TensorSpec([], tf.float32, name="alpha"),
    tf.TensorSpec([], tf.int32, name="n_best"),
]
CONSTRAINED_SIGNATURE = [
    *OPTIONS_SIGNATURE,
    tf.TensorSpec([], tf.int32, name="min_length"),
    tf.TensorSpec([], tf.int32, name="no_repeat_ngram_size"),
    tf.TensorSpec([None], tf.string, name="prefix"),
]
SAMPLE_SIGNATURE = [
    *TEXT_SIGNATURE,
    tf.TensorSpec([], tf.float32, name="temperature"),
    tf.TensorSpec([], tf.int32, name="top_k"),
    tf.TensorSpec([], tf.float32, name="top_p"),
    tf.TensorSpec([], tf.int32, name="seed"),
]
__all__ = ["PAIR_SIGNATURE", "InGraphTranslator", "make_translator"]


class InGraphTranslator(TranslationAnalysis):
    """Tokenize -> encode -> greedy or beam search (or sampling) -> detokenize, all TF ops.

    Args:
        model: a `seq2seq.model.Translator`.
        source_tokenizer, target_tokenizer: `seq2seq.data.tokenizers.SubwordTokenizer`s.
        beam_size: 1 decodes greedily.
        alpha: GNMT length-penalty exponent.
        n_best: hypotheses returned by `translate_nbest` (<= beam_size).
        max_length_ratio, max_length_offset: a sentence of n source pieces gets at most
            ratio * n + offset target pieces (EOS included); with a prefix of p pieces, at
            least p + offset.
        max_input_length: source pieces kept; longer inputs are truncated (documented).
        stopping: when a sentence's beam search ends, "bound" or "top_beam"
            (`seq2seq.inference.beam`).
        min_length, no_repeat_ngram_size, prefix: the constraints of the baked-in decoding
            (`seq2seq.inference.constraints`); 0, 0 and "" are off.
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
        min_length=0,
        no_repeat_ngram_size=0,
        prefix="",
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
        self.min_length = min_length
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self.prefix = prefix

    def encode_text(self, text):
        """(batch,) strings -> right-padded source ids (batch, >=1) and their lengths."""
        pieces = self.source_tokenizer.tokenize(tf.strings.strip(text))[:, : self.max_input_length]
        ids = pieces.to_tensor(0)
        ids = tf.pad(ids, [[0, 0], [0, 1 - tf.minimum(tf.shape(ids)[1], 1)]])  # at least 1 column
        return ids, tf.cast(pieces.row_lengths(), tf.int32)

    def max_output_lengths(self, source_lengths):
        lengths = tf.cast(source_lengths, tf.float32) * self.max_length_ratio
        return tf.cast(tf.math.ceil(lengths), tf.int32) + self.max_length_offset

    def baked_constraints(self, text):
        """The constraints of the baked-in decoding, for `search`."""
        prefix = None if not self.prefix else tf.fill(tf.shape(text), self.prefix)
        return {
            "min_length": self.min_length,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
            "prefix": prefix,
        }

    def search_limits(self, source_lengths, constraints):
        """The keyword arguments of the searches: ids, lengths and `constraints` (a dict of
        `min_length`, `no_repeat_ngram_size` and `prefix`, strings (batch,) or None)."""
        max_lengths = self.max_output_lengths(source_lengths)
        prefix = None
        if constraints["prefix"] is not None:
            pieces = self.target_tokenizer.tokenize(tf.strings.strip(constraints["prefix"]))
            pieces = pieces[:, : self.max_input_length]
            lengths = tf.cast(pieces.row_lengths(), tf.int32)
            prefix = Prefix(tf.cast(pieces.to_tensor(0), tf.int32), lengths)
            max_lengths = tf.maximum(max_lengths, lengths + self.max_length_offset)
        return dict(
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            max_lengths=max_lengths,
            min_length=constraints["min_length"],
            no_repeat_ngram_size=constraints["no_repeat_ngram_size"],
            prefix=prefix,
        )

    def search(self, text, beam_size, n_best, alpha, constraints=None):
        """Returns ids (batch, n_best, len), scores (batch, n_best) and source lengths.

        beam_size, n_best and alpha are Python numbers or scalar tensors (chosen at run time);
        beam size 1 decodes greedily. `constraints`: see `search_limits`; None: the baked ones.
        Every score is the log-probability divided by the length penalty with `alpha`.
        """
        ids, lengths = self.encode_text(text)
        state, memory = self.model.encode(ids)
        # The weights are read once, not at every step; the logits come in beam search's chunks.
        step = self.model.decode_step_fn(CHUNK)
        limits = self.search_limits(lengths, constraints or self.baked_constraints(text))

        def greedy():
            out, scores = greedy_search(step, state, memory, **limits)
            hypothesis_lengths = tf.math.count_nonzero(out, axis=1, dtype=tf.int32)
            scores /= search.length_penalty(hypothesis_lengths, alpha)
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

    def detokenize(self, ids, source_lengths):
        """(batch, len) ids -> strings; an empty (or whitespace-only) input gives ""."""
        text = self.target_tokenizer.detokenize(tf.RaggedTensor.from_tensor(ids, padding=0))
        return tf.where(source_lengths > 0, text, tf.zeros_like(text))

    def translate(self, text):
        def run():
            ids, _, lengths = self.search(text, self.beam_size, 1, self.alpha)
            return self.detokenize(ids[:, 0, :], lengths)

        return {"translation": unless_empty(text, run, lambda: tf.zeros([0], tf.string))}

    def translate_nbest(self, text):
        return self.translate_options(text, self.beam_size, self.alpha, self.n_best)

    def translate_options(self, text, beam_size, alpha, n_best):
        """n-best translations and scores with decoding settings chosen by the caller."""
        return self._translate_nbest(text, beam_size, alpha, n_best, None)

    def translate_constrained(
        self, text, beam_size, alpha, n_best, min_length, no_repeat_ngram_size, prefix
    ):
        """`translate_options` with the constraints chosen too: `prefix` one string a
        sentence ("" for none)."""
        checks = [
            tf.debugging.Assert(min_length >= 0, ["min_length must be >= 0, got", min_length]),
            tf.debugging.Assert(
                no_repeat_ngram_size >= 0,
                ["no_repeat_ngram_size must be >= 0 (0: off), got", no_repeat_ngram_size],
            ),
            tf.debugging.assert_equal(
                tf.size(prefix), tf.size(text), message="text and prefix differ in length"
            ),
        ]
        with tf.control_dependencies(checks):
            constraints = {
                "min_length": tf.identity(min_length),
                "no_repeat_ngram_size": tf.identity(no_repeat_ngram_size),
                "prefix": tf.identity(prefix),
            }
        return self._translate_nbest(text, beam_size, alpha, n_best, constraints)

    def _translate_nbest(self, text, beam_size, alpha, n_best, constraints):
        def run():
            ids, scores, lengths = self.search(text, beam_size, n_best, alpha, constraints)
            batch, n = tf.shape(ids)[0], tf.shape(ids)[1]
            flat = tf.reshape(ids, [batch * n, -1])
            text_out = self.detokenize(flat, tf.repeat(lengths, n))
            return tf.reshape(text_out, [batch, n]), scores

        def empty():
            return tf.zeros([0, n_best], tf.string), tf.zeros([0, n_best], tf.float32)

        translations, scores = unless_empty(text, run, empty)
        return {"translations": translations, "scores": scores}

    def translate_sample(self, text, temperature, top_k, top_p, seed):
        """One sampled translation a sentence (`seq2seq.inference.sampling`), with the baked
        constraints; the same `seed` gives a sentence the same translation in any batch."""

        def run():
            with tf.control_dependencies(sampling.check_sampling(temperature, top_k, top_p)):
                ids, lengths = self.encode_text(text)
            state, memory = self.model.encode(ids)
            step = self.model.decode_step_fn(CHUNK)
            out, _ = greedy_search(
                step,
                state,
                memory,
                choose=sampling.sampler(temperature, top_k, top_p),
                per_sentence={"sample_keys": sampling.sentence_keys(tf.strings.strip(text), seed)},
                **self.search_limits(lengths, self.baked_constraints(text)),
            )
            return self.detokenize(out, lengths)

        return {"translations": unless_empty(text, run, lambda: tf.zeros([0], tf.string))}


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
        min_length=decode.min_length,
        no_repeat_ngram_size=decode.no_repeat_ngram_size,
        prefix=decode.prefix,
    )
