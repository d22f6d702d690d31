"""Starting a new run from a finished run's weights (`trainer.init_from=RUN`): fine-tuning or
continuing with another configuration.

Unlike resuming, only the weights come along: the optimizer, its step count, the epochs, the
learning-rate schedule and the moving average start afresh. The new run reuses RUN's tokenizers
(copied into its folder; the `data.tokenizer.*` settings are then unused), since the weights are
those of RUN's vocabularies, and needs RUN's architecture (`model.*`).
"""

import logging
import shutil

from seq2seq import config as config_lib
from seq2seq.inference.trained import check_same_tokenizers
from seq2seq.model.weights import load_weights
from seq2seq.run_folder import RunFolder

log = logging.getLogger(__name__)


def initial_run(path):
    """The finished run at `path` (`trainer.init_from`), its configuration and final weights.

    Raises:
        ValueError: no such run, or it has no tokenizers or no final weights.
    """
    folder = RunFolder(path)
    if not folder.config.is_file():
        raise ValueError(f"trainer.init_from={path}: not a run folder (no {folder.config.name})")
    config = config_lib.load_run_config(folder.config)
    weights = folder.final_weights(
        average_last_checkpoints=config.trainer.average_last_checkpoints,
        final_weights=config.trainer.final_weights,
    )
    if weights is None:
        raise ValueError(f"trainer.init_from={path}: the run has no final weights (unfinished?)")
    for side in ("source", "target"):
        if not folder.tokenizer_model(side).is_file():
            raise ValueError(f"trainer.init_from={path}: no {folder.tokenizer_model(side)}")
    return folder, config, weights


def reuse_tokenizers(initial, run_folder):
    """Copies the initial run's tokenizers into `run_folder`, or checks that the ones there (a
    continued run) are the same.

    Raises:
        ValueError: `run_folder` has other tokenizers.
    """
    target = RunFolder(run_folder).tokenizers
    if target.exists():
        check_same_tokenizers([initial.path, RunFolder(run_folder).path])
        return
    shutil.copytree(initial.tokenizers, target)
    log.info("tokenizers of %s reused (data.tokenizer.* unused)", initial.path)


def check_same_architecture(initial_config, model_config, path):
    """Raises ValueError naming the `model.*` settings that differ from the initial run's."""
    theirs, ours = initial_config.model.architecture(), model_config.architecture()
    differing = [
        f"model.{k} ({theirs[k]!r} there, {ours[k]!r} here)" for k in theirs if theirs[k] != ours[k]
    ]
    if differing:
        raise ValueError(
            f"trainer.init_from={path} has another architecture: {', '.join(differing)}"
        )


def load_initial_weights(model, weights_path):
    """Gives `model` the initial run's final weights (and its moving average, if any, them)."""
    load_weights(model, weights_path)
    average = getattr(model, "weight_average", None)
    if average is not None:
        average.restart()
    log.info("weights initialized from %s", weights_path)
