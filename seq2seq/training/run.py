"""A whole training run, as `python -m seq2seq.train` does it, from a `Config`:

    seed -> data -> tokenizers -> batches -> model -> fit -> final weights -> BLEU -> export

Also the steps that other tools share with it (`prepare_data`, `build_model`): the benchmark
builds the same model on the same batches.
"""

import json
import logging
import statistics
import time
from typing import NamedTuple

import absl.logging
import tensorflow as tf
import tensorflow_datasets as tfds

from seq2seq import config as config_lib
from seq2seq.data import pipeline
from seq2seq.data.filters import PairFilter
from seq2seq.data.sources import load_configured_splits
from seq2seq.data.subword_sampling import SubwordSampler
from seq2seq.data.tokenizers import prepare_tokenizers, vocabulary_size
from seq2seq.evaluation.scoring import evaluate, split_groups, split_texts
from seq2seq.files import atomic_write_json, atomic_write_text, writable_dir
from seq2seq.inference.export import export_saved_model
from seq2seq.inference.translator import TEXT_SIGNATURE, make_translator
from seq2seq.model.translator import set_precision
from seq2seq.model.weights import load_weights, save_weights
from seq2seq.run_folder import RunFolder, RunLock
from seq2seq.training import distribute, monitoring, optim
from seq2seq.training.checkpoints import average_checkpoints
from seq2seq.training.dev import DevEvaluation
from seq2seq.training.ema import averaged_weights
from seq2seq.training.fit import fit
from seq2seq.training.init_from import (
    check_same_architecture,
    initial_run,
    load_initial_weights,
    reuse_tokenizers,
)
from seq2seq.training.memory import release_training_graphs
from seq2seq.training.model_setup import build_translator, reseed_host, set_seed
from seq2seq.training.resume import ResumeState, changed_settings
from seq2seq.training.validation import validate, with_dev_schedule

log = logging.getLogger(__name__)


class _Run(NamedTuple):
    """What a run builds before training: data, model, translator, dev evaluation."""

    splits: dict
    datasets: tuple  # training batches, validation batches, statistics, data position
    model: object
    translator: object
    translate_fn: object
    dev: DevEvaluation
    resume: ResumeState | None


def train(config, run_dir) -> dict:
    """Runs one experiment in `run_dir` and returns its metrics (also in `metrics.json`).

    `config` is a `seq2seq.config.Config`; it is validated before anything is written. One
    process at a time trains in a run folder; run again, it continues where it stopped, with the
    settings that may change (`resume.changed_settings`).
    """
    start = time.monotonic()
    config = with_dev_schedule(validate(config))
    initial = None
    if config.trainer.init_from:
        initial = initial_run(config.trainer.init_from)
        check_same_architecture(initial[1], config.model, config.trainer.init_from)
    strategy = distribute.make_strategy(config.trainer.strategy)  # before any other TF op
    folder = RunFolder(writable_dir(distribute.worker_run_dir(strategy, run_dir), "hydra.run.dir"))
    with RunLock(folder):
        _start_run(config, folder)
        if initial:
            reuse_tokenizers(initial[0], folder)
        resume_from = RunFolder(run_dir).resume
        run = _build(config, folder, strategy, resume_from, initial and initial[2])
        train_ds, val_ds, stats, position = run.datasets
        history, out_of_time = fit(
            run.model,
            train_ds,
            val_ds,
            run_folder=folder,
            trainer=config.trainer,
            train_stats=stats,
            position=position,
            dev=run.dev,
            resume=run.resume,
        )
        metrics = _finish(config, folder, run, history, out_of_time, start)
        metrics.update(strategy=config.trainer.strategy, replicas=strategy.num_replicas_in_sync)
        atomic_write_json(folder.metrics, metrics)
    if distribute.is_chief(strategy):
        log.info("metrics: %s", json.dumps({k: metrics[k] for k in ("validation", "test")}))
    distribute.finish_run_dir(strategy, folder.path)
    return metrics


def _build(config, folder, strategy, resume_from, initial_weights=None):
    replicas = strategy.num_replicas_in_sync
    splits, toks, (train_ds, val_ds, stats, position) = prepare_data(config, folder, replicas)
    reseed_host(config.seed)  # preparing a TFDS data set the first time draws numbers
    train_ds, val_ds = (distribute.pad_batches(ds, replicas) for ds in (train_ds, val_ds))
    with strategy.scope():  # every variable, the optimizer's slots included
        model = build_model(config, toks, train_ds)
        if initial_weights:  # a resumed run's state then replaces them
            load_initial_weights(model, initial_weights)
        agree = None
        if config.trainer.strategy == "multi_worker":
            agree = distribute.resume_agreement(strategy)
        resume_state = ResumeState(folder.resume, model, resume_from, agree)
    if config.trainer.strategy == "multi_worker":
        distribute.check_same_vocabularies(strategy, toks)
        distribute.use_training_loop(model, strategy)
    translator = make_translator(model, toks, config.decode)
    translate_fn = tf.function(translator.translate, input_signature=TEXT_SIGNATURE)
    average = getattr(model, "weight_average", None)
    dev = _dev_evaluation(config, translator, translate_fn, splits["validation"], folder, average)
    datasets = (train_ds, val_ds, stats, position)
    return _Run(splits, datasets, model, translator, translate_fn, dev, resume_state)


def _finish(config, folder, run, history, out_of_time, start):
    """The final weights, evaluation and export; the run's metrics."""
    train_seconds = time.monotonic() - start
    release_training_graphs(run.model)
    weights = load_final_weights(run.model, folder, config.trainer)
    results = {"validation": run.dev.evaluate_now(len(history))}
    results["test"] = _test_evaluation(config, run.translate_fn, run.splits["test"], folder)
    monitoring.write_final_metrics(str(folder.tensorboard), results, len(history))
    _warn_if_below_the_best(run.dev.scores, results["validation"], weights)
    if config.export:
        export_saved_model(run.translator, folder.export)
    stats = run.datasets[2]
    metrics = _metrics(results, history, stats, train_seconds, out_of_time, run.model, start)
    metrics["final_weights"] = weights
    return metrics


def _warn_if_below_the_best(dev_scores, final, weights):
    """Says so when the weights evaluated and exported score below the best dev evaluation."""
    earlier = dev_scores[:-1]  # the last entry is the final evaluation itself
    if not earlier:
        return
    best = max(earlier, key=lambda s: s["bleu"])
    if best["bleu"] > final["bleu"] + 0.5:
        when = f"epoch {best['epoch']}" if "epoch" in best else f"step {best['step']}"
        log.warning(
            "the exported weights (%s) score dev BLEU %.2f, below the best evaluation's %.2f "
            "(%s): trainer.final_weights=best would export that one",
            weights,
            final["bleu"],
            best["bleu"],
            when,
        )


def prepare_data(config, run_folder, num_replicas=1):
    """The splits, the tokenizers (trained in the run folder, or the ones already there), and
    `pipeline.make_datasets`'s training and validation batches, statistics and data position."""
    splits = load_configured_splits(config.data)
    tokenizer = config.data.tokenizer
    toks, paths = prepare_tokenizers(
        splits["train"],
        RunFolder(run_folder).tokenizers,
        vocab_size=tokenizer.vocab_size,
        model_type=tokenizer.model_type,
        joint=tokenizer.joint,
        restrict_vocabulary=tokenizer.restrict_vocabulary,
        max_sentences=tokenizer.max_sentences,
    )
    samplers = None
    if tokenizer.sample_alpha:
        samplers = [SubwordSampler(p, tokenizer.sample_alpha, tokenizer.nbest_size) for p in paths]
    data = config.data
    datasets = pipeline.make_datasets(
        splits,
        *toks,
        max_source_length=data.max_source_length,
        max_target_length=data.max_target_length,
        batch_tokens=data.batch_tokens,
        batch_sentences=data.batch_sentences,
        shuffle_buffer=data.shuffle_buffer,
        pool_size=data.pool_size,
        pad_to_multiple=data.pad_to_multiple,
        seed=config.seed,
        num_replicas=num_replicas,
        pair_filter=PairFilter(data.drop_long_pairs, data.max_length_ratio),
        samplers=samplers,
    )
    return splits, toks, datasets


def build_model(config, toks, train_ds):
    """The compiled Translator the config describes, for these tokenizers."""
    trainer = config.trainer
    return build_translator(
        vocabulary_size(toks[0]),
        vocabulary_size(toks[1]),
        optimizer=_optimizer(trainer, train_ds),
        label_smoothing=trainer.label_smoothing,
        clipnorm=trainer.clipnorm,
        param_init=config.model.param_init,
        accumulate_steps=trainer.accumulate_steps,
        ema_decay=trainer.ema_decay,
        **config.model.architecture(),
    )


def _optimizer(trainer, train_ds):
    total_steps = 0
    if trainer.schedule == "cosine":
        batches = trainer.epochs * pipeline.count_batches(train_ds)
        total_steps = batches // trainer.accumulate_steps  # the schedule counts updates
    schedule = optim.learning_rate_schedule(
        trainer.schedule,
        trainer.learning_rate,
        warmup_steps=trainer.warmup_steps,
        decay_start_step=trainer.decay_start_step,
        decay_every_steps=trainer.decay_every_steps,
        total_steps=total_steps,
    )
    return optim.make_optimizer(trainer.optimizer, schedule, weight_decay=trainer.weight_decay)


def load_final_weights(model, run_folder, trainer):
    """Gives `model` the weights the run evaluates and exports (`RunFolder.final_weights`),
    writing the average of the last K epoch checkpoints first when asked; returns which."""
    folder = RunFolder(run_folder)
    described = "last"  # the model's own weights: the last epoch's
    average = getattr(model, "weight_average", None)
    if average is not None:  # as the checkpoint files hold
        average.copy_to_weights()
        described = "last (moving average)"
    if trainer.average_last_checkpoints > 1:
        paths = folder.last_epoch_weights(trainer.average_last_checkpoints)
        average_checkpoints(model, paths)
        save_weights(model, folder.averaged_weights)
        described = f"average of {[p.name for p in paths]}"
    path = folder.final_weights(
        average_last_checkpoints=trainer.average_last_checkpoints,
        final_weights=trainer.final_weights,
    )
    if path in (None, folder.last_weights, folder.averaged_weights):
        return described
    load_weights(model, path)
    return path.name


def _start_run(config, folder):
    """Checks a used run folder's settings against these, seeds, writes config.yaml and the
    HParams."""
    absl.logging.set_verbosity(absl.logging.WARNING)  # TFDS logs every file it opens
    tfds.disable_progress_bar()
    if folder.config.exists():
        changed = changed_settings(config_lib.load_run_config(folder.config), config)
        for key, (old, new) in changed.items():
            log.info("continuing %s with %s=%r (it was %r)", folder.path, key, new, old)
    set_seed(config.seed, config.trainer.deterministic)
    set_precision(config.trainer.precision)
    atomic_write_text(folder.config, config_lib.to_yaml(config))
    hparams = monitoring.flatten_config(config_lib.to_dict(config))
    monitoring.write_hparams(str(folder.tensorboard), hparams, folder.path.name)


def _dev_evaluation(config, translator, translate_fn, validation, folder, weight_average):
    """The DevEvaluation callback: BLEU/chrF on at most K dev sentences, samples, attention;
    of the averaged weights when there is a `weight_average`."""
    limit = config.trainer.validation_max_sentences
    sources, references = split_texts(validation, limit)
    groups = split_groups(validation, limit)
    n = config.trainer.tensorboard_samples

    def scores():
        with averaged_weights(weight_average):
            return evaluate(
                translate_fn,
                sources,
                references,
                batch_size=config.decode.batch_size,
                parallel=config.decode.parallel_batches,
                groups=groups,
            )[0]

    def samples(writer, step):
        if n:
            with averaged_weights(weight_average):
                found = monitoring.attention_samples(translator, sources[:n])
            monitoring.write_samples(writer, found, references[:n], step)

    return DevEvaluation(
        scores,
        samples,
        str(folder.tensorboard_run("validation")),
        config.trainer.bleu_every_n_epochs,
        config.trainer.bleu_every_n_steps,
    )


def _test_evaluation(config, translate_fn, test, folder):
    scores, hypotheses = evaluate(
        translate_fn,
        *split_texts(test),
        batch_size=config.decode.batch_size,
        parallel=config.decode.parallel_batches,
        groups=split_groups(test),
    )
    atomic_write_text(folder.test_hypotheses, "\n".join(hypotheses) + "\n")
    return scores


def _metrics(results, history, stats, train_seconds, out_of_time, model, start):
    def median_rate(side):
        rates = [h[f"{side}_tokens_per_second"] for h in history]
        return statistics.median(rates) if rates else None

    return {
        **results,
        "epochs_completed": len(history),
        "stopped_by_time_budget": out_of_time,
        "training_seconds": round(train_seconds, 1),
        "total_seconds": round(time.monotonic() - start, 1),
        "target_tokens_per_second": median_rate("target"),  # median over epochs
        "source_tokens_per_second": median_rate("source"),
        "parameters": model.count_params(),
        "data": stats,
        "history": [{k: float(v) for k, v in h.items()} for h in history],
    }


def summary(run_folder, metrics, exported) -> str:
    """What `python -m seq2seq.train` prints at the end: where everything went, the scores."""
    folder = RunFolder(run_folder)
    test = metrics["test"]
    lines = [
        f"run folder:  {folder.path}",
        f"test BLEU:   {test['bleu']:.2f}  ({test['bleu_signature']})",
        f"test chrF:   {test['chrf']:.2f}",
    ]
    if "exact_match" in test:
        lines.append(f"exact match: {test['exact_match']:.2f}%")
        by_group = test.get("exact_match_by_group", {})
        if by_group:
            lines.append("             " + ", ".join(f"{g} {v:.1f}%" for g, v in by_group.items()))
    lines += [
        f"metrics:     {folder.metrics}",
        f"TensorBoard: tensorboard --logdir {folder.tensorboard}",
        f"checkpoints: {folder.checkpoints}",
    ]
    if exported:
        lines.append(f"SavedModel:  {folder.export}  (serving_default: text -> translation)")
    lines.append(f"total time:  {metrics['total_seconds']:.0f} s")
    return "\n".join(lines)
