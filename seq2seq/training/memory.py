"""Keeping a training process's memory down: free heap pages handed back, traced steps dropped."""

import keras

from seq2seq.memory import release_free_memory, release_unreachable


class ReleaseFreeMemory(keras.callbacks.Callback):
    """`release_free_memory` every `every_n_steps` batches and at every epoch's end."""

    def __init__(self, every_n_steps):
        super().__init__()
        self.every_n_steps = every_n_steps
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        if self._batches % self.every_n_steps == 0:
            release_free_memory()

    def on_epoch_end(self, epoch, logs=None):
        release_free_memory()


def release_training_graphs(model):
    """Drops the traced training and validation steps once training is over, and their pages.

    Their graphs, and TensorFlow's optimized copies of them, stay alive as long as the model
    refers to them; the final evaluation and the export that end a run then need memory on top.
    Keras traces them again if the model trains once more.
    """
    model.train_function = model.test_function = None
    release_unreachable()
