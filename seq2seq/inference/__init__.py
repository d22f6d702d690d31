"""Inference: decoding searches over a model's step function, the export, and running an export.

- `search`, `greedy`, `beam`, `top_k`: the searches (core TensorFlow ops, in the graph);
- `constraints`, `sampling`: n-gram blocking and forced prefixes; sampling one translation;
- `forced`, `analysis`, `alignment`: scores, attention and word alignments of given translations;
- `settings`: the rules for decoding settings, and the options the tools choose;
- `translator`: string -> string translation in TensorFlow ops, as the export serves it;
- `export`: writing that translator as a SavedModel; `exported`: loading and running one (the
  Python API, `ExportedModel`);
- `batching`, `threads`: translating many sentences, several batches at once;
- `trained`: finished runs as models (final weights, ensembles);
- `server` (TensorFlow Serving's REST API, `/v1/translate`, the page), `tf_serving` (its JSON),
  `service` (an export's signatures behind) `batcher` (dynamic batching): serving an export.
"""
