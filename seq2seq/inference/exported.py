"""Running an export: load it, and translate lists of sentences with its signatures.

Used by the command-line tools (`seq2seq.translate`, `seq2seq.evaluate`, `seq2seq.score`), the
server and Python code (`ExportedModel`). Imports TensorFlow and tensorflow_text only when a
model is loaded, and never the training code: an export needs nothing else.
"""

from typing import NamedTuple

from seq2seq.inference.settings import ARGUMENT_NAMES, DecodeOptions, SampleOptions

_ASCII_SPACE = " \t\n\r\f\v"  # what tf.strings.strip removes inside the export


class UnsupportedExport(ValueError):
    """The export cannot be loaded, or lacks a signature that the options need."""


class Hypothesis(NamedTuple):
    """One translation; `score` is None when the signature returns no scores."""

    text: str
    score: float | None = None


def is_blank(sentence: str) -> bool:
    """True for inputs the export translates to "" (empty after stripping ASCII whitespace)."""
    return not sentence.strip(_ASCII_SPACE)


def load_export(export_dir):
    """Loads an exported translator; tensorflow_text is imported first (SentencePiece op).

    Raises:
        UnsupportedExport: the folder holds no loadable SavedModel (corrupt or incomplete).
    """
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    try:
        return tf.saved_model.load(str(export_dir))
    except Exception as error:  # TensorFlow raises many kinds for a damaged SavedModel
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnsupportedExport(f"{export_dir}: cannot load the SavedModel: {reason}") from None


def batch_translator(model, options: DecodeOptions, *, scores=False):
    """Returns a function: list of sentences -> list (per sentence) of `Hypothesis` lists.

    Baked settings use `serving_default` (one hypothesis, no score) or, with `scores`,
    `translate_nbest`; chosen settings use `translate_options`. Blank inputs get the empty
    translation with score 0.0 (the export skips them; its score is meaningless).

    Raises:
        UnsupportedExport: The export lacks the signature needed.
        ValueError: The options are invalid.
    """
    import tensorflow as tf

    if options.baked and not scores:
        serve = _signature(model, "serving_default")

        def translate_1best(batch):
            out = serve(text=tf.constant(batch, tf.string))["translation"].numpy()
            return [[Hypothesis(text.decode("utf-8"))] for text in out]

        return translate_1best
    if options.baked:
        signature, settings = _signature(model, "translate_nbest"), {}
    else:
        name = "translate_constrained" if options.constrained else "translate_options"
        hint = " (exported before it existed): re-export it, or drop the decoding options"
        signature = _signature(model, name, hint)
        settings = _settings(options)
    prefix = settings.pop("prefix", None)

    def translate_nbest(batch):
        text = tf.constant(batch, tf.string)
        inputs = dict(settings)  # its own: batches run on several threads at once
        if prefix is not None:
            inputs["prefix"] = tf.fill(tf.shape(text), prefix)
        out = signature(text=text, **inputs)
        return hypotheses_of(batch, out["translations"].numpy(), out["scores"].numpy())

    return translate_nbest


def _settings(options):
    """The inputs of `translate_options` or `translate_constrained` for `options`."""
    import tensorflow as tf

    beam_size, alpha, n_best = options.resolve()
    settings = {
        "beam_size": tf.constant(beam_size, tf.int32),
        "alpha": tf.constant(alpha, tf.float32),
        "n_best": tf.constant(n_best, tf.int32),
    }
    if options.constrained:
        min_length, no_repeat_ngram_size, prefix = options.constraints()
        settings["min_length"] = tf.constant(min_length, tf.int32)
        settings["no_repeat_ngram_size"] = tf.constant(no_repeat_ngram_size, tf.int32)
        settings["prefix"] = prefix
    return settings


def batch_sampler(model, options: SampleOptions):
    """Returns a function: list of sentences -> list (per sentence) of one `Hypothesis`, sampled
    with `translate_sample` (no score)."""
    import tensorflow as tf

    signature = _signature(model, "translate_sample", " (exported before it existed)")
    settings = {
        "temperature": tf.constant(options.temperature, tf.float32),
        "top_k": tf.constant(options.top_k, tf.int32),
        "top_p": tf.constant(options.top_p, tf.float32),
        "seed": tf.constant(options.seed, tf.int32),
    }

    def sample(batch):
        out = signature(text=tf.constant(batch, tf.string), **settings)["translations"]
        return [[Hypothesis(text.decode("utf-8"))] for text in out.numpy()]

    return sample


def _signature(model, name, hint=""):
    if name not in model.signatures:
        raise UnsupportedExport(f"the export has no {name!r} signature{hint}")
    return model.signatures[name]


def hypotheses_of(batch, translations, scores):
    """`Hypothesis` lists of a batch, from the n-best signatures' outputs (bytes, float32)."""
    return [
        [
            Hypothesis(text.decode("utf-8"), 0.0 if is_blank(source) else float(score))
            for text, score in zip(row_texts, row_scores)
        ]
        for source, row_texts, row_scores in zip(batch, translations, scores)
    ]


class Score(NamedTuple):
    """A translation's score: `log_probability` divided by the GNMT length penalty (the number
    the searches report), and the log-probability of each target piece, EOS last."""

    score: float
    log_probability: float
    token_log_probs: list[float]


class Attention(NamedTuple):
    """`weights[t][s]`: the attention of target piece t (EOS last) on source piece s."""

    weights: list[list[float]]
    source_pieces: list[str]
    target_pieces: list[str]


class ExportedModel:
    """An export, loaded, with a method for each of its signatures, on lists of strings.

    Example:
        model = ExportedModel("outputs/numbers/export")  # or the run folder
        model.translate(["dreihundert"])                  # ["three hundred"]
        model.translate_nbest(["dreihundert"], beam_size=5, n_best=2, prefix="three")
        model.sample(["dreihundert"], temperature=0.8, top_p=0.9, seed=1)
        model.score(["dreihundert"], ["three hundred"])    # [Score(score=-0.05, ...)]
        model.align(["dreihundert"], ["three hundred"])    # ["0-0 0-1"]
        model.attention(["dreihundert"], ["three hundred"])

    Every method takes a list and returns a list in the same order, decoding `batch_size`
    sentences of similar length at a time. Raises ValueError for settings out of range and
    `UnsupportedExport` for an export without the signature a method needs.
    """

    def __init__(self, path, batch_size=64):
        from seq2seq.run_folder import find_export

        self.path = find_export(path)
        self.model = load_export(self.path)
        self.batch_size = batch_size

    def _run(self, run_batch, items, length=len):
        from seq2seq.inference.batching import translate_sorted

        return translate_sorted(run_batch, list(items), self.batch_size, length=length)

    def translate(self, sentences, **options) -> list[str]:
        """The best translation of each sentence; `options` as `translate_nbest`'s."""
        decode = _options(options)
        run = batch_translator(self.model, decode, scores=not decode.baked)
        return [hypotheses[0].text for hypotheses in self._run(run, sentences)]

    def translate_nbest(self, sentences, **options) -> list[list[Hypothesis]]:
        """Scored hypotheses, best first. `options`: beam_size, alpha, n_best, min_length,
        no_repeat_ngram_size, prefix (one string for every sentence); none: the export's."""
        return self._run(batch_translator(self.model, _options(options), scores=True), sentences)

    def sample(self, sentences, *, temperature=1.0, top_k=0, top_p=1.0, seed=0) -> list[str]:
        """One sampled translation a sentence (`seq2seq.inference.sampling`)."""
        options = SampleOptions(temperature, top_k, top_p, seed).check(ARGUMENT_NAMES)
        return [h[0].text for h in self._run(batch_sampler(self.model, options), sentences)]

    def score(self, sentences, translations) -> list[Score]:
        """The score of each translation given its sentence."""

        def run(pairs):
            out = self._pairs("score", pairs)
            return [
                Score(float(score), float(logp), tokens[:length].tolist())
                for score, logp, tokens, length in zip(
                    *(out[k].numpy() for k in ("score", "log_probability", "token_log_probs")),
                    out["lengths"].numpy(),
                )
            ]

        return self._run(run, _pairs(sentences, translations), length=pair_length)

    def align(self, sentences, translations) -> list[str]:
        """Pharaoh `i-j` word alignments (source word i, target word j) from the attention."""

        pairs = _pairs(sentences, translations)
        return self._run(batch_aligner(self.model), pairs, length=pair_length)

    def attention(self, sentences, translations) -> list[Attention]:
        """The attention matrix of each translation given its sentence, with the pieces."""

        def run(pairs):
            out = {k: v.numpy() for k, v in self._pairs("attention", pairs).items()}
            found = []
            for i in range(len(pairs)):
                s, t = out["source_lengths"][i], out["target_lengths"][i]
                found.append(
                    Attention(
                        out["attention"][i, :t, :s].tolist(),
                        [p.decode("utf-8") for p in out["source_pieces"][i, :s]],
                        [p.decode("utf-8") for p in out["target_pieces"][i, :t]],
                    )
                )
            return found

        return self._run(run, _pairs(sentences, translations), length=pair_length)

    def _pairs(self, name, pairs):
        return run_pairs(self.model, name, pairs)


def run_pairs(model, name, pairs):
    """The outputs of the signature `name` (score, attention, align) on (text, translation)
    pairs."""
    import tensorflow as tf

    signature = _signature(model, name, " (exported before it existed): re-export it")
    text, translation = (tf.constant([p[i] for p in pairs], tf.string) for i in (0, 1))
    return signature(text=text, translation=translation)


def batch_aligner(model):
    """Returns a function: list of (text, translation) pairs -> their Pharaoh alignments."""

    def align(pairs):
        return [a.decode("utf-8") for a in run_pairs(model, "align", pairs)["alignment"].numpy()]

    return align


def _options(options):
    from seq2seq.config import decode_defaults

    decode = DecodeOptions(**options, default_alpha=decode_defaults().alpha)
    if not decode.baked:
        decode.resolve()
        decode.constraints()
    return decode


def _pairs(sentences, translations):
    sentences, translations = list(sentences), list(translations)
    if len(sentences) != len(translations):
        raise ValueError(f"{len(sentences)} sentences but {len(translations)} translations")
    return list(zip(sentences, translations))


def pair_length(pair):
    """What pairs are sorted by for batching."""
    return len(pair[0]) + len(pair[1])
