"""The export: a self-contained SavedModel that turns text into text.

The SavedModel holds the SentencePiece models, the network and the decoding loop. Loading it
needs only `tensorflow` and `tensorflow_text` (import it first: it registers the SentencePiece
op), never this package.
"""

import logging
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from seq2seq.files import ensure_free_space, replace_dir
from seq2seq.inference.exported import load_export
from seq2seq.inference.translator import (
    CONSTRAINED_SIGNATURE,
    OPTIONS_SIGNATURE,
    PAIR_SIGNATURE,
    SAMPLE_SIGNATURE,
    TEXT_SIGNATURE,
)
from seq2seq.memory import release_unreachable

log = logging.getLogger(__name__)


def export_saved_model(translator, path, check_sentence="1"):
    """Writes the SavedModel atomically: a temp folder, verified by reloading, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = sum(int(np.prod(w.shape)) * 4 for w in translator.model.weights)  # float32
    ensure_free_space(path.parent, weights + 16 * 2**20, f"writing the export {path}")
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        with _without_cudnn(translator.model):
            _write_archive(translator, tmp)
        release_unreachable()  # the archive's traced graphs, before the reload loads new ones
        _verify(tmp, check_sentence)
        replace_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("SavedModel written to %s", path)
    return path


def _write_archive(translator, out_dir):
    archive = keras.export.ExportArchive()
    # The model is not tracked: the endpoints capture its variables, and tracking it as well
    # stores every weight a second time, doubling the file and the memory of whoever loads it
    # (keras#23553, open in Keras 3.15.1). tf_text tokenizers are tf.Modules holding the
    # SentencePiece proto as a resource, which no endpoint captures by itself.
    archive.track(translator.source_tokenizer)
    archive.track(translator.target_tokenizer)
    archive.add_endpoint("serving_default", translator.translate, input_signature=TEXT_SIGNATURE)
    archive.add_endpoint(
        "translate_nbest", translator.translate_nbest, input_signature=TEXT_SIGNATURE
    )
    archive.add_endpoint(
        "translate_options", translator.translate_options, input_signature=OPTIONS_SIGNATURE
    )
    archive.add_endpoint(
        "translate_constrained",
        translator.translate_constrained,
        input_signature=CONSTRAINED_SIGNATURE,
    )
    archive.add_endpoint(
        "translate_sample", translator.translate_sample, input_signature=SAMPLE_SIGNATURE
    )
    for name in ("score", "attention", "align"):
        archive.add_endpoint(name, getattr(translator, name), input_signature=PAIR_SIGNATURE)
    archive.write_out(str(out_dir), verbose=False)


class _without_cudnn:
    """Traces with the generic LSTM kernel, so a GPU-trained export also runs on CPU-only hosts.

    A graph traced while a GPU is visible otherwise holds CudnnRNNV3, which has no CPU kernel.
    """

    def __init__(self, model):
        self.layers = model.lstm_layers()

    def __enter__(self):
        self.saved = [layer.use_cudnn for layer in self.layers]
        for layer in self.layers:
            layer.use_cudnn = False

    def __exit__(self, *exc):
        for layer, value in zip(self.layers, self.saved):
            layer.use_cudnn = value


def _verify(path, sentence):
    loaded = load_export(path)
    out = loaded.signatures["serving_default"](text=tf.constant([sentence]))["translation"]
    if out.shape != (1,):
        raise RuntimeError(f"the export in {path} did not translate a test sentence")
