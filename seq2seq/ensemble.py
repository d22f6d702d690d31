"""`python -m seq2seq.ensemble RUN RUN ... --output DIR`: several trained runs as one model.

At every decoding step the members' next-token distributions are averaged (the mean of their
probabilities, as OpenNMT-py's and Sockeye's ensembles do); greedy and beam search run on the
average. The runs must share their tokenizers (the same data and `data.tokenizer.*` give the
same ones) and their target vocabulary. Each member brings the weights its run evaluated and
exported (the average of its last checkpoints, `best` or `last`).

DIR becomes a run-like folder: `DIR/export` (a SavedModel with the same signatures as a run's,
served by `seq2seq.translate` and `seq2seq.evaluate`), `DIR/config.yaml` (the first run's, for
`--split`; decoding settings as given here) and `DIR/tokenizers`.
"""

import argparse
import math
import shutil
import sys
import warnings
from pathlib import Path

import keras
import tensorflow as tf
from omegaconf import OmegaConf

from seq2seq import training
from seq2seq.files import atomic_write_text
from seq2seq.tokenizers import load_tokenizer

TOKENIZER_FILES = ("source.model", "target.model", "source.vocab", "target.vocab")


class Ensemble(keras.Model):
    """`Translator`s decoding together: `encode` and `decode_step` as a single `Translator`'s,
    whose logits are the log of the members' mean next-token probabilities."""

    def __init__(self, members, **kwargs):
        super().__init__(**kwargs)
        self.members = list(members)
        self.built = True  # the members are

    def encode(self, source_ids):
        encoded = [member.encode(source_ids) for member in self.members]
        return [state for state, _ in encoded], [memory for _, memory in encoded]

    def decode_step(self, tokens, state, memory):
        return _mean_step([m.decode_step for m in self.members], tokens, state, memory)

    def decode_step_fn(self, vocabulary_multiple=1):
        """`decode_step` with every member's weights read once, here (`Translator`'s)."""
        steps = [member.decode_step_fn(vocabulary_multiple) for member in self.members]
        return lambda tokens, state, memory: _mean_step(steps, tokens, state, memory)

    def lstm_layers(self):
        return [layer for member in self.members for layer in member.lstm_layers()]

    def call(self, inputs, training=None):
        return _log_mean_probs([member(inputs, training=training) for member in self.members])

    def get_config(self):
        return {"members": [member.get_config() for member in self.members], "name": self.name}


def _mean_step(step_fns, tokens, state, memory):
    steps = [step(tokens, *inputs) for step, *inputs in zip(step_fns, state, memory)]
    return _log_mean_probs([logits for logits, _ in steps]), [s for _, s in steps]


def _log_mean_probs(logits):
    """log of the mean of the softmaxes of `logits` (a list of same-shape tensors)."""
    log_probs = [tf.nn.log_softmax(tf.cast(x, tf.float32)) for x in logits]
    return tf.reduce_logsumexp(tf.stack(log_probs), axis=0) - math.log(len(log_probs))


def final_weights_file(run_dir, trainer):
    """The checkpoint a finished run evaluated and exported (`trainer.*` of its config)."""
    checkpoint_dir = Path(run_dir) / "checkpoints"
    candidates = []
    if trainer.average_last_checkpoints > 1:
        candidates.append("averaged.weights.h5")
    if trainer.final_weights == "best":
        candidates.append("best.weights.h5")
    candidates.append("last.weights.h5")
    for name in candidates:
        if (checkpoint_dir / name).exists():
            return checkpoint_dir / name
    raise ValueError(f"{checkpoint_dir}: no {candidates[-1]}; is the run finished?")


def check_same_tokenizers(run_dirs):
    """Raises ValueError naming the first run whose tokenizer files differ from the first's."""
    first = Path(run_dirs[0]) / "tokenizers"
    for run_dir in run_dirs[1:]:
        other = Path(run_dir) / "tokenizers"
        for name in TOKENIZER_FILES:
            if _tokenizer_content(first / name) != _tokenizer_content(other / name):
                raise ValueError(f"{other / name} differs from {first / name}: an ensemble's "
                                 "runs must share their tokenizers")  # fmt: skip


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


def load_member(run_dir, source_size, target_size):
    """A run's Translator with the weights it exported."""
    cfg = OmegaConf.load(Path(run_dir) / "config.yaml")
    from seq2seq.train import MODEL_KEYS

    model = training.build_translator(
        source_size, target_size, optimizer="adam", label_smoothing=0.0,
        **{key: cfg.model[key] for key in MODEL_KEYS},
    )  # fmt: skip
    path = final_weights_file(run_dir, cfg.trainer)
    with warnings.catch_warnings():  # the checkpoint's optimizer slots are not needed here
        warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
        model.load_weights(path)
    return model, path


def build_ensemble(run_dirs, output_dir, decode_settings=()):
    """Writes the ensemble folder (see the module docstring); returns its export path. Every
    run is checked and loaded before anything is written."""
    from seq2seq.export import export_saved_model
    from seq2seq.train import compose_config, make_translator

    run_dirs = [Path(d) for d in run_dirs]
    if len(run_dirs) < 2:
        raise ValueError("an ensemble needs at least 2 runs")
    check_same_tokenizers(run_dirs)
    cfg = OmegaConf.load(run_dirs[0] / "config.yaml")
    defaults = compose_config().decode  # for settings added since the run was trained
    settings = OmegaConf.from_dotlist(list(decode_settings))
    cfg.decode = OmegaConf.merge(defaults, cfg.decode, settings)
    training.configure_precision(cfg.trainer.precision)
    toks = [load_tokenizer(run_dirs[0] / "tokenizers" / f"{side}.model")
            for side in ("source", "target")]  # fmt: skip
    sizes = [int(tok.vocab_size()) for tok in toks]
    members, weights = zip(*(load_member(d, *sizes) for d in run_dirs))
    translator = make_translator(Ensemble(members), toks, cfg.decode)
    output_dir = Path(output_dir)
    shutil.copytree(run_dirs[0] / "tokenizers", output_dir / "tokenizers", dirs_exist_ok=True)
    cfg.ensemble = [str(path.resolve()) for path in weights]
    atomic_write_text(output_dir / "config.yaml", OmegaConf.to_yaml(cfg))
    return export_saved_model(translator, output_dir / "export")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m seq2seq.ensemble",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("items", nargs="+", metavar="RUN | decode.KEY=VALUE",
                        help="finished run folders (2 or more), and decoding settings baked into "
                             "the export, e.g. decode.beam_size=5 decode.alpha=1.0")  # fmt: skip
    parser.add_argument("--output", required=True, help="the ensemble's folder")
    args = parser.parse_args(argv)
    runs = [item for item in args.items if "=" not in item]
    settings = [item.removeprefix("decode.") for item in args.items if "=" in item]
    try:
        path = build_ensemble(runs, args.output, settings)
    except (ValueError, FileNotFoundError) as error:
        print(f"seq2seq.ensemble: error: {error}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
