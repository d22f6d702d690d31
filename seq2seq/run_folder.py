"""The layout of a run folder: every file a run writes, named here once.

    config.yaml            the composed configuration
    train.log              the log
    tokenizers/            {source,target}.model (SentencePiece), {source,target}.vocab
    checkpoints/           last, best, averaged and epoch_NNN .weights.h5; resume/ (the state)
    tensorboard/           train/ and validation/ event files, HParams
    metrics.json           the run's scores and figures
    test_hypotheses.txt    the test split's translations
    export/                the SavedModel
    evaluation_*.json      what `seq2seq.evaluate` wrote

An ensemble's folder (`seq2seq.ensemble`) has the same layout, with `config.yaml`, `tokenizers/`,
`export/` and `members.txt` only. Standard library only: the command-line tools read it before
TensorFlow starts.
"""

import os
from pathlib import Path

from seq2seq.files import parked_copy

EXPORT_FILE = "saved_model.pb"  # what makes a folder a SavedModel


class RunFolder:
    """The paths of the run folder at `path` (which need not exist yet)."""

    def __init__(self, path):
        self.path = Path(path)

    def __fspath__(self):
        return str(self.path)

    def __repr__(self):
        return f"RunFolder({str(self.path)!r})"

    @property
    def config(self):
        return self.path / "config.yaml"

    @property
    def log(self):
        return self.path / "train.log"

    @property
    def tokenizers(self):
        return self.path / "tokenizers"

    def tokenizer_model(self, side):
        """`side` is "source" or "target"."""
        return self.tokenizers / f"{side}.model"

    @property
    def checkpoints(self):
        return self.path / "checkpoints"

    @property
    def last_weights(self):
        return self.checkpoints / "last.weights.h5"

    @property
    def best_weights(self):
        return self.checkpoints / "best.weights.h5"

    @property
    def averaged_weights(self):
        return self.checkpoints / "averaged.weights.h5"

    def epoch_weights(self, epoch):
        return self.checkpoints / f"epoch_{epoch:03d}.weights.h5"

    def last_epoch_weights(self, count):
        """The newest `count` epoch checkpoints, oldest first."""
        return sorted(self.checkpoints.glob("epoch_*.weights.h5"))[-count:]

    def final_weights(self, *, average_last_checkpoints, final_weights):
        """The checkpoint a finished run evaluated and exported (`trainer.*` of its config):
        the average of its last epochs, else the best, else the last weights; None if the run
        has none of them (it has not finished an epoch)."""
        candidates = []
        if average_last_checkpoints > 1:
            candidates.append(self.averaged_weights)
        if final_weights == "best":
            candidates.append(self.best_weights)
        candidates.append(self.last_weights)
        return next((path for path in candidates if path.exists()), None)

    @property
    def resume(self):
        return self.checkpoints / "resume"

    @property
    def tensorboard(self):
        return self.path / "tensorboard"

    def tensorboard_run(self, name):
        """`train` or `validation`: the TensorBoard run of that name."""
        return self.tensorboard / name

    @property
    def metrics(self):
        return self.path / "metrics.json"

    @property
    def test_hypotheses(self):
        return self.path / "test_hypotheses.txt"

    @property
    def export(self):
        return self.path / "export"

    @property
    def members(self):
        """An ensemble's list of its members' weights files, one a line."""
        return self.path / "members.txt"

    def evaluation(self, name):
        return self.path / f"evaluation_{name}.json"


def find_export(path) -> Path:
    """The SavedModel folder of an export folder, or of a run folder (its `export/`).

    Raises:
        FileNotFoundError: `path` does not exist, or holds no SavedModel, directly or in export/.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    # A process killed while replacing an export leaves the previous one parked beside it.
    for candidate in (path, RunFolder(path).export, parked_copy(RunFolder(path).export)):
        if (candidate / EXPORT_FILE).is_file():
            return candidate
    raise FileNotFoundError(
        f"{path}: not an export folder (no {EXPORT_FILE}) nor a run folder "
        f"(no export/{EXPORT_FILE})"
    )


def run_folder_of(export_dir) -> RunFolder | None:
    """The run folder of an export (the one holding config.yaml: the export's parent, or the
    export folder itself), or None."""
    export_dir = Path(export_dir)
    for candidate in (export_dir, export_dir.parent):
        if RunFolder(candidate).config.is_file():
            return RunFolder(candidate)
    return None


class RunFolderInUse(OSError):
    """Another process trains in the run folder; the message says which."""


class RunLock:
    """One training process per run folder: an exclusive `fcntl` lock on `.lock`, which names
    its holder (process id, host, start time) for the message a second process gets. The
    lock goes with the process, however it ends (a killed run leaves no stale lock)."""

    def __init__(self, folder):
        self.path = RunFolder(folder).path / ".lock"

    def __enter__(self):
        import fcntl
        import socket
        import time

        self.file = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise RunFolderInUse(
                f"hydra.run.dir={self.path.parent} is in use by {holder}: wait for it, or "
                "choose another hydra.run.dir"
            ) from None
        self.file.truncate(0)
        self.file.write(
            f"process {os.getpid()} on {socket.gethostname()} since {time.strftime('%c')}\n"
        )
        self.file.flush()
        return self

    def __exit__(self, *exc):
        self.file.close()  # releases the lock
