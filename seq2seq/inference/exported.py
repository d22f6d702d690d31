"""Running an export: load it, and translate lists of sentences with its signatures.

Used by the command-line tools (`seq2seq.translate`, `seq2seq.evaluate`) and the server. Imports
TensorFlow and tensorflow_text only when a model is loaded, and never the training code: an
export needs nothing else.
"""

from typing import NamedTuple

from seq2seq.inference.settings import DecodeOptions

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
        hint = " (exported before it existed): re-export it, or drop --beam-size/--alpha/--n-best"
        signature = _signature(model, "translate_options", hint)
        beam_size, alpha, n_best = options.resolve()
        settings = {
            "beam_size": tf.constant(beam_size, tf.int32),
            "alpha": tf.constant(alpha, tf.float32),
            "n_best": tf.constant(n_best, tf.int32),
        }

    def translate_nbest(batch):
        out = signature(text=tf.constant(batch, tf.string), **settings)
        return hypotheses_of(batch, out["translations"].numpy(), out["scores"].numpy())

    return translate_nbest


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
