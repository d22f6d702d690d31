"""What the server serves: an export's signatures, called through the dynamic batcher.

`predict` answers TensorFlow Serving's predict requests; `translate` the friendlier
`/v1/translate`. Both return exactly what the export returns for the same inputs alone: rows
share calls only for the signatures whose outputs are batch-invariant and hold no padding that
depends on the other sentences of a call (`CROSS_REQUEST_SIGNATURES`); the others run a request
whole. Needs only TensorFlow and the export.
"""

import asyncio
import functools

import numpy as np

from seq2seq.inference.batcher import DynamicBatcher
from seq2seq.inference.exported import UnsupportedExport, hypotheses_of
from seq2seq.inference.settings import (
    ARGUMENT_NAMES,
    check_beam_settings,
    check_constraints,
    check_sampling,
)
from seq2seq.inference.tf_serving import BadRequest, InputSpec

CROSS_REQUEST_SIGNATURES = frozenset(
    {
        "serving_default",
        "translate_nbest",
        "translate_options",
        "translate_constrained",
        "translate_sample",
        "align",
    }
)


def input_specs(function):
    """{input name: `InputSpec`} of a loaded signature."""
    specs = function.structured_input_signature[1]
    return {
        name: InputSpec(spec.dtype.name, spec.shape.rank) for name, spec in sorted(specs.items())
    }


class TranslationService:
    """An export's signatures behind a `DynamicBatcher`.

    Args:
        model: the loaded export (`seq2seq.inference.exported.load_export`).
        max_batch_size, max_wait_ms, workers: the batcher's settings.
        max_beam_size: the largest beam (and n-best) a request may ask for.
        default_alpha: the length penalty of a request that sets a beam size but no alpha.
    """

    def __init__(
        self, model, *, max_batch_size, max_wait_ms, workers, max_beam_size, default_alpha
    ):
        self.model = model
        self.max_beam_size = max_beam_size
        self.default_alpha = default_alpha
        self.signatures = {name: input_specs(fn) for name, fn in model.signatures.items()}
        self.batcher = DynamicBatcher(
            self._run_batch, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, workers=workers
        )

    def close(self):
        """Finishes the calls already queued, then stops the batcher's threads."""
        self.batcher.close()

    def warm_up(self):
        """Runs the translation signatures once: their first call optimizes their graphs."""
        for name, scalars in (
            ("serving_default", {}),
            ("translate_nbest", {}),
            ("translate_options", {"beam_size": 2, "alpha": self.default_alpha, "n_best": 1}),
        ):
            if name in self.signatures:
                self._call(name, {"text": ["1"], **scalars})

    async def predict(self, request):
        """Outputs of a `tf_serving.Predict`: a {name: value} a row (row format) or
        {name: array} (columnar)."""
        self._check_settings(request.scalars, lambda key: f"inputs[{key!r}]")
        name = request.signature
        if name in CROSS_REQUEST_SIGNATURES and request.size:
            rows = await self._rows(name, request.scalars, request.columns)
            return rows if request.rows else _stack(rows)
        inputs = {**request.columns, **request.scalars}
        columns = await self._whole(name, inputs)
        return _unstack(columns) if request.rows else columns

    async def translate(self, texts, options, *, alignments=False, attention=False):
        """One entry a sentence: its n-best hypotheses with scores, and on request the
        alignment (the export's `align`) and attention (its `attention`) of the best one.

        Args:
            texts: the sentences.
            options: a `DecodeOptions`; baked settings use `translate_nbest`.
        """
        for flag, needed in ((alignments, "align"), (attention, "attention")):
            if flag and needed not in self.signatures:
                raise BadRequest(f"the model has no {needed!r} signature (re-export it)")
        name, scalars, per_sentence = self._translation_signature(options)
        if not texts:
            return []
        columns = {
            "text": texts,
            **{key: [value] * len(texts) for key, value in per_sentence.items()},
        }
        rows = await self._rows(name, scalars, columns)
        found = hypotheses_of(
            texts, [row["translations"] for row in rows], [row["scores"] for row in rows]
        )
        results = [
            {"source": text, "hypotheses": [h._asdict() for h in hypotheses]}
            for text, hypotheses in zip(texts, found)
        ]
        pairs = {"text": texts, "translation": [hypotheses[0].text for hypotheses in found]}
        if alignments:
            aligned = await self._rows("align", {}, pairs)
            for result, row in zip(results, aligned):
                result["alignment"] = row["alignment"].decode("utf-8")
        if attention:
            weights = await self._whole("attention", pairs)
            for result, matrix in zip(results, attention_matrices(weights)):
                result["attention"] = matrix
        return results

    def _translation_signature(self, options):
        """The n-best signature for `options` (a `DecodeOptions`), its scalar inputs and the
        inputs it takes a sentence (the same for every sentence of the request)."""
        scalars, per_sentence = {}, {}
        if options.baked:
            name = "translate_nbest"
        else:
            try:
                beam_size, alpha, n_best = options.resolve(names=ARGUMENT_NAMES)
                check_constraints(options.min_length, options.no_repeat_ngram_size)
            except ValueError as error:
                raise BadRequest(str(error)) from None
            constraints = options.constraints() if options.constrained else None
            name = "translate_constrained" if constraints else "translate_options"
            scalars = {"beam_size": beam_size, "alpha": alpha, "n_best": n_best}
            if constraints:
                scalars.update(min_length=constraints[0], no_repeat_ngram_size=constraints[1])
                per_sentence["prefix"] = constraints[2]
            self._check_settings(scalars, str)
        if name not in self.signatures:
            raise UnsupportedExport(f"the export has no {name!r} signature (re-export it)")
        return name, scalars, per_sentence

    def _check_settings(self, settings, name_of):
        """Raises BadRequest, naming the input by `name_of(key)`, for a decoding setting out of
        range (the rules of `seq2seq.inference.settings`, and --max-beam-size)."""
        names = {key: name_of(key) for key in ARGUMENT_NAMES}
        given = {key: settings.get(key) for key in ARGUMENT_NAMES}
        try:
            check_beam_settings(given["beam_size"], given["alpha"], given["n_best"], names=names)
            check_constraints(given["min_length"], given["no_repeat_ngram_size"], names=names)
            if all(given[key] is not None for key in ("temperature", "top_k", "top_p")):
                check_sampling(given["temperature"], given["top_k"], given["top_p"], names=names)
        except ValueError as error:
            raise BadRequest(str(error)) from None
        for key in ("beam_size", "n_best"):
            if given[key] is not None and given[key] > self.max_beam_size:
                raise BadRequest(
                    f"{names[key]}={given[key]}: the server allows at most {self.max_beam_size}"
                    " (--max-beam-size)"
                )

    async def _rows(self, name, scalars, columns):
        """Per-row outputs, the rows queued to share calls with other requests'."""
        size = len(next(iter(columns.values())))
        values = [{key: column[i] for key, column in columns.items()} for i in range(size)]
        lengths = [len(value.get("text", "")) for value in values]
        key = (name, tuple(sorted(scalars.items())))
        futures = self.batcher.submit(key, values, lengths)
        return await asyncio.gather(*map(asyncio.wrap_future, futures))

    async def _whole(self, name, inputs):
        future = self.batcher.call(functools.partial(self._call, name, inputs))
        return await asyncio.wrap_future(future)

    def _run_batch(self, key, values):
        name, scalars = key
        columns = {column: [value[column] for value in values] for column in values[0]}
        return _unstack(self._call(name, {**columns, **dict(scalars)}))

    def _call(self, name, inputs):
        import tensorflow as tf

        specs = self.signatures[name]
        tensors = {
            key: tf.constant(value, tf.as_dtype(specs[key].dtype)) for key, value in inputs.items()
        }
        try:
            outputs = self.model.signatures[name](**tensors)
        except tf.errors.InvalidArgumentError as error:
            reason = error.message.strip().splitlines()[0]
            raise BadRequest(f"signature {name!r}: {reason}") from None
        return {key: value.numpy() for key, value in outputs.items()}


def attention_matrices(outputs):
    """Per sentence, from the `attention` signature's outputs: its source and target pieces
    and the weights (a row a target piece, a column a source piece), without padding."""
    matrices = []
    for i, (source_length, target_length) in enumerate(
        zip(outputs["source_lengths"], outputs["target_lengths"])
    ):
        source, target = int(source_length), int(target_length)
        matrices.append(
            {
                "source_pieces": [p.decode("utf-8") for p in outputs["source_pieces"][i, :source]],
                "target_pieces": [p.decode("utf-8") for p in outputs["target_pieces"][i, :target]],
                "weights": outputs["attention"][i, :target, :source].tolist(),
            }
        )
    return matrices


def _unstack(columns):
    size = len(next(iter(columns.values())))
    return [{key: array[i] for key, array in columns.items()} for i in range(size)]


def _stack(rows):
    return {key: np.stack([row[key] for row in rows]) for key in rows[0]}
