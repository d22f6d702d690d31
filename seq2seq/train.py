"""`python -m seq2seq.train [overrides]`: prepare data, train, evaluate, export.

The entry point: Hydra composes the configuration (`conf/`, checked against `seq2seq.config`),
and `seq2seq.training.run.train` does the work on the plain `Config` it becomes.
"""

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from seq2seq import cli
from seq2seq.config import register_schema, to_config

register_schema()


@hydra.main(version_base="1.3", config_path="pkg://seq2seq.conf", config_name="config")
def main(composed: DictConfig) -> float:
    """Trains; returns the validation BLEU, what a Hydra sweeper optimizes (never test)."""
    cli.quiet_tensorflow()  # before the library imports TensorFlow
    from seq2seq.training.fit import TrainingInterrupted
    from seq2seq.training.run import summary, train

    run_dir = HydraConfig.get().runtime.output_dir
    try:
        metrics = train(to_config(composed), run_dir)
    except TrainingInterrupted as e:
        print(f"seq2seq.train: {e}", file=sys.stderr, flush=True)
        sys.exit(130)
    except (ValueError, OSError, FloatingPointError, ConnectionError) as e:
        sys.exit(f"seq2seq.train: error: {e}")  # one line, exit code 1
    print(summary(run_dir, metrics, composed.export), flush=True)
    return metrics["validation"]["bleu"]


def run():
    """`python -m seq2seq.train` and the `seq2seq-train` script: `main` with Hydra's output
    folder checked first."""
    cli.check_output_folders(sys.argv[1:])
    main()


if __name__ == "__main__":
    run()
