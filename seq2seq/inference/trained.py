"""Finished runs as models for inference: their tokenizers, their final weights, ensembles.

An ensemble's folder (`build_ensemble`) is run-like: `export/` (the same signatures as a run's,
served by `seq2seq.translate` and `seq2seq.evaluate`), `config.yaml` (the first run's, for
`--split`; the decoding settings as given) and `tokenizers/`; `members.txt` names the weights.
"""

import shutil
from pathlib import Path

from seq2seq import config as config_lib
from seq2seq.data.tokenizers import load_tokenizer, vocabulary_size
from seq2seq.files import atomic_write_text
from seq2seq.inference.export import export_saved_model
from seq2seq.inference.settings import CONFIG_NAMES, check_beam_settings
from seq2seq.inference.translator import make_translator
from seq2seq.model import translator as translator_lib
from seq2seq.model.ensemble import Ensemble
from seq2seq.model.weights import load_weights
from seq2seq.run_folder import RunFolder

TOKENIZER_FILES = ("source.model", "target.model", "source.vocab", "target.vocab")


def load_tokenizers(run_folder):
    """The run's (source, target) in-graph tokenizers."""
    folder = RunFolder(run_folder)
    return tuple(load_tokenizer(folder.tokenizer_model(side)) for side in ("source", "target"))


def load_final_model(run_folder, tokenizers):
    """The run's Translator with the weights it evaluated and exported; and their path.

    Raises:
        ValueError: the run has no final weights (it has not finished an epoch).
    """
    folder = RunFolder(run_folder)
    config = config_lib.load_run_config(folder.config)
    trainer = config.trainer
    path = folder.final_weights(
        average_last_checkpoints=trainer.average_last_checkpoints,
        final_weights=trainer.final_weights,
    )
    if path is None:
        raise ValueError(
            f"{folder.checkpoints}: no {folder.last_weights.name}; is the run finished?"
        )
    model, _ = load_run_model(folder, tokenizers)
    load_weights(model, path)
    return model, path


def load_run_model(run_folder, tokenizers=None):
    """The run's Translator, built for its tokenizers, with no weights loaded yet; and them."""
    folder = RunFolder(run_folder)
    config = config_lib.load_run_config(folder.config)
    tokenizers = tokenizers or load_tokenizers(folder)
    sizes = [vocabulary_size(tokenizer) for tokenizer in tokenizers]
    return translator_lib.build(*sizes, **config.model.architecture()), tokenizers


def export_run_like(run_folder, model, tokenizers, output_dir):
    """Writes `output_dir` as a run-like folder of `model` (config.yaml and tokenizers/ of the
    run, export/ of the model, with the run's decoding settings); returns its export."""
    source = RunFolder(run_folder)
    config = config_lib.load_run_config(source.config)
    translator = make_translator(model, tokenizers, config.decode)
    out = RunFolder(output_dir)
    shutil.copytree(source.tokenizers, out.tokenizers, dirs_exist_ok=True)
    atomic_write_text(out.config, config_lib.to_yaml(config))
    return export_saved_model(translator, out.export)


def check_same_tokenizers(run_dirs):
    """Raises ValueError naming the first run whose tokenizer files differ from the first's."""
    first = RunFolder(run_dirs[0]).tokenizers
    for run_dir in run_dirs[1:]:
        other = RunFolder(run_dir).tokenizers
        for name in TOKENIZER_FILES:
            if _tokenizer_content(first / name) != _tokenizer_content(other / name):
                raise ValueError(
                    f"{other / name} differs from {first / name}: an ensemble's runs must share "
                    "their tokenizers"
                )


def _tokenizer_content(path):
    """What decides the ids: the pieces and scores of a model (its proto also names the
    temporary files it was trained from), the lines of a vocabulary."""
    if not path.exists():
        return None
    if path.suffix == ".vocab":
        return path.read_text(encoding="utf-8")
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=str(path))
    return [(processor.id_to_piece(i), processor.get_score(i)) for i in range(len(processor))]


def build_ensemble(run_dirs, output_dir, decode_overrides=()):
    """Writes the ensemble folder of the runs (see the module docstring); returns its export.

    Every run is checked and loaded before anything is written. `decode_overrides` are
    `KEY=VALUE` settings of `decode.*` baked into the export.
    """
    run_dirs = [Path(d) for d in run_dirs]
    if len(run_dirs) < 2:
        raise ValueError("an ensemble needs at least 2 runs")
    check_same_tokenizers(run_dirs)
    config = config_lib.load_run_config(RunFolder(run_dirs[0]).config)
    decode = config_lib.override(config.decode, decode_overrides, prefix="decode.")
    check_beam_settings(decode.beam_size, decode.alpha, decode.n_best, names=CONFIG_NAMES)
    config.decode = decode
    translator_lib.set_precision(config.trainer.precision)
    tokenizers = load_tokenizers(run_dirs[0])
    members, weights = zip(*(load_final_model(d, tokenizers) for d in run_dirs))
    translator = make_translator(Ensemble(members), tokenizers, config.decode)
    out = RunFolder(output_dir)
    shutil.copytree(RunFolder(run_dirs[0]).tokenizers, out.tokenizers, dirs_exist_ok=True)
    atomic_write_text(out.config, config_lib.to_yaml(config))
    atomic_write_text(out.members, "".join(f"{p.resolve()}\n" for p in weights))
    return export_saved_model(translator, out.export)
