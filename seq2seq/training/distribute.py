"""tf.distribute strategies by name (`trainer.strategy`) and the multi-worker training loop.

- `default`: the current (single-device) strategy.
- `mirrored`: MirroredStrategy over every local GPU; without GPUs, over the logical CPU devices
  that the environment variable `SEQ2SEQ_CPU_DEVICES=N` splits the CPU into (for tests: it is
  not faster than one device).
- `multi_worker`: MultiWorkerMirroredStrategy, the cluster read from `TF_CONFIG`. Keras 3.15
  `model.fit` fails under it (keras#20585), so `use_training_loop` gives the model a `fit` that
  runs `strategy.run(model.train_step)` with the same loss, metrics and callbacks.
- `tpu`: TPUStrategy through TPUClusterResolver (`TPU_NAME`). Untested.
"""

import functools
import logging
import os
import shutil
import tempfile
import zlib

import keras
import tensorflow as tf

log = logging.getLogger(__name__)

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
CPU_DEVICES_ENV = "SEQ2SEQ_CPU_DEVICES"


def make_strategy(name):
    """The strategy called `name`; call it before TensorFlow runs any op."""
    if name not in STRATEGIES:
        raise ValueError(f"trainer.strategy={name!r} is unknown; choose one of {STRATEGIES}")
    split_cpu(int(os.environ.get(CPU_DEVICES_ENV) or 1))
    if name == "default":
        strategy = tf.distribute.get_strategy()
    elif name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
        if len(devices) == 1:
            log.warning("trainer.strategy=mirrored on 1 device (no GPU; %s unset)", CPU_DEVICES_ENV)
    elif name == "multi_worker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(os.environ.get("TPU_NAME"))
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    log.info("trainer.strategy=%s: %d replicas", name, strategy.num_replicas_in_sync)
    return strategy


def split_cpu(count):
    """Splits the CPU into `count` logical devices; possible only before the first TF op."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if count < 2 or (current and len(current) == count):
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count
        )
    except RuntimeError:
        raise RuntimeError(
            f"{CPU_DEVICES_ENV}={count}: TensorFlow is already running, so the CPU can no longer "
            "be split; create the strategy before any other TensorFlow op"
        ) from None


def is_chief(strategy):
    """True except on the non-chief workers of a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return (
        task_type in (None, "chief")
        or task_type == "worker"
        and task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )


def worker_run_dir(strategy, run_dir):
    """run_dir on the chief; a temporary folder elsewhere (remove it with `finish_run_dir`)."""
    if is_chief(strategy):
        return run_dir
    return tempfile.mkdtemp(prefix=f"seq2seq-worker{strategy.cluster_resolver.task_id}-")


def finish_run_dir(strategy, run_dir):
    if not is_chief(strategy):
        shutil.rmtree(run_dir, ignore_errors=True)


def check_same_vocabularies(strategy, tokenizers):
    """Fails unless every worker trained the same SentencePiece vocabularies."""
    crcs = [
        zlib.crc32(b"\n".join(t.id_to_string(tf.range(t.vocab_size())).numpy())) for t in tokenizers
    ]
    crcs = tf.constant(crcs, tf.int64)
    total = strategy.reduce("SUM", strategy.run(lambda: tf.identity(crcs)), axis=None)
    if not bool(tf.reduce_all(total == crcs * strategy.num_replicas_in_sync)):
        raise RuntimeError("the workers' tokenizers differ: give every worker the same data")


def pad_batches(dataset, replicas):
    """Pads every batch to a multiple of `replicas` rows with copies whose labels are all padding
    (no loss, no metric). The bucket sizes already are multiples, but an end-of-epoch partial
    batch can come first on small data, and Keras 3.15 fails on a first batch that does not
    split evenly across replicas."""

    def pad(x, y):
        rows = tf.range(-tf.shape(y)[0] % replicas) % tf.shape(y)[0]
        x = {k: tf.concat([v, tf.gather(v, rows)], 0) for k, v in x.items()}
        return x, tf.concat([y, tf.zeros_like(tf.gather(y, rows))], 0)

    return dataset if replicas == 1 else dataset.map(pad).prefetch(tf.data.AUTOTUNE)


def use_training_loop(model, strategy):
    """Makes `model.fit` the loop below, so `training.fit` and its callbacks run unchanged
    under MultiWorkerMirroredStrategy, where Keras 3.15 fit fails (keras#20585)."""
    model.fit = functools.partial(fit_with_strategy_run, model, strategy)


def fit_with_strategy_run(
    model, strategy, x, validation_data=None, epochs=1, initial_epoch=0, callbacks=(), verbose=0
):
    """`model.fit(dataset, ...)` as a loop of `strategy.run(model.train_step)`.

    Every global batch is split across all replicas of all workers (DATA sharding); workers
    stop together (a callback stopping one worker, e.g. the time budget, stops all).
    """
    callbacks = keras.callbacks.CallbackList(callbacks, add_history=True, model=model)
    train_data = _distribute(strategy, x)
    train_step = _distributed_step(strategy, model.train_step, train_data.element_spec)
    if validation_data is not None:
        validation_data = _distribute(strategy, validation_data)
        test_step = _distributed_step(strategy, model.test_step, validation_data.element_spec)
    any_worker = _any_worker(strategy)
    model.stop_training = False
    callbacks.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callbacks.on_epoch_begin(epoch)
        for step, batch in enumerate(train_data):
            callbacks.on_train_batch_begin(step)
            logs = train_step(batch)
            callbacks.on_train_batch_end(step, logs)
            if any_worker(model.stop_training):
                break
        if validation_data is not None:
            model.reset_metrics()
            for batch in validation_data:
                val_logs = test_step(batch)
            logs.update({f"val_{k}": v for k, v in val_logs.items()})
        callbacks.on_epoch_end(epoch, logs)
        if verbose:
            shown = {k: v for k, v in logs.items() if k != "val_gradient_norm"}
            print(f"epoch {epoch + 1}/{epochs}: {shown}", flush=True)
        if any_worker(model.stop_training):
            break
    callbacks.on_train_end(logs)
    return model.history


def _distributed_step(strategy, step, spec):
    @tf.function(input_signature=[spec])  # one trace for every batch shape
    def run(batch):
        results = strategy.run(step, args=(batch,))  # metric results are already all-reduced
        return {k: strategy.experimental_local_results(v)[0] for k, v in results.items()}

    return lambda batch: {k: float(v) for k, v in run(batch).items()}


def _distribute(strategy, dataset):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def resume_agreement(strategy):
    """step -> None on every worker if all restored the same step (-1: none), else raises.

    Raises:
        ValueError: some workers restored another step (or none) than others, e.g. without
            the chief's run folder on a shared filesystem.
    """
    total = _sum_over_replicas(strategy)

    def agree(step):
        differs = total(float(step)) != total(1.0) * step
        if total(float(differs)) > 0:
            raise ValueError(
                "the workers resumed from different states: give every worker the chief's "
                "hydra.run.dir on a shared filesystem (or start a new run folder)"
            )

    return agree


def _sum_over_replicas(strategy):
    """value -> the sum over every replica of every worker (each worker passes its own)."""

    @tf.function
    def total(value):
        return strategy.reduce("SUM", strategy.run(tf.identity, args=(value,)), axis=None)

    return lambda value: float(total(tf.constant(value, tf.float32)))


def _any_worker(strategy):
    """flag -> whether it is True on any worker."""
    total = _sum_over_replicas(strategy)
    return lambda flag: total(float(flag)) > 0
