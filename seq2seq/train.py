"""`python -m seq2seq.train [overrides]`: prepare data, train, evaluate, export.

The only module (with the other entry points) that knows Hydra: it turns the composed config
into plain arguments for the library.
"""

import json
import logging
import statistics
import sys
import time
from pathlib import Path

import absl.logging
import hydra
import tensorflow as tf
import tensorflow_datasets as tfds
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from seq2seq import checkpoints, data, distribute, memory, monitoring, optim, resume, training
from seq2seq.callbacks import DevBleuEarlyStopping, DevEvaluation
from seq2seq.config import Config
from seq2seq.evaluation import evaluate, split_texts
from seq2seq.export import TEXT_SIGNATURE, InGraphTranslator, export_saved_model
from seq2seq.files import atomic_write_json, atomic_write_text, writable_dir
from seq2seq.tokenizers import vocabulary_size

log = logging.getLogger("seq2seq.train")

ConfigStore.instance().store(name="base_config", node=Config)

SOURCE_OPTIONS = {
    "numbers": ("train_size", "validation_size", "test_size", "min_number", "max_number", "seed"),
    "multi30k": ("source_language", "target_language", "manual_dir"),
    "text": (
        "train_prefix",
        "validation_prefix",
        "test_prefix",
        "source_language",
        "target_language",
    ),
    "tfds": ("name", "source_language", "target_language"),
}
MODEL_KEYS = (
    "embedding_dim",
    "units",
    "encoder_layers",
    "decoder_layers",
    "bidirectional",
    "attention",
    "dropout",
    "bridge",
    "residual",
    "input_feeding",
    "tie_embeddings",
)


def load_splits(data_cfg):
    if data_cfg.source not in SOURCE_OPTIONS:
        raise ValueError(
            f"data.source={data_cfg.source!r} is unknown; choose one of {sorted(SOURCE_OPTIONS)}"
        )
    options = {k: data_cfg[k] for k in SOURCE_OPTIONS[data_cfg.source]}
    data_dir = str(Path(data_cfg.data_dir).expanduser())
    return data.load_splits(data_cfg.source, data_dir=data_dir, **options)


def make_translator(model, tokenizers, decode_cfg):
    if decode_cfg.parallel_batches < 1:  # read by the evaluations, checked before training
        raise ValueError(
            f"decode.parallel_batches={decode_cfg.parallel_batches} must be at least 1"
        )
    if decode_cfg.get("intra_op_threads") is not None and decode_cfg.intra_op_threads < 1:
        raise ValueError(
            f"decode.intra_op_threads={decode_cfg.intra_op_threads} must be at least 1 (or null)"
        )
    return InGraphTranslator(
        model,
        *tokenizers,
        beam_size=decode_cfg.beam_size,
        alpha=decode_cfg.alpha,
        n_best=decode_cfg.n_best,
        max_length_ratio=decode_cfg.max_length_ratio,
        max_length_offset=decode_cfg.max_length_offset,
        max_input_length=decode_cfg.max_input_length,
        stopping=decode_cfg.stopping,
    )


def train(cfg: DictConfig, run_dir) -> dict:
    """Runs one experiment in run_dir and returns its metrics (also in run_dir/metrics.json)."""
    start = time.monotonic()
    strategy = distribute.make_strategy(cfg.trainer.strategy)  # before any other TF op
    chief = distribute.is_chief(strategy)  # other workers write to a temporary folder
    run_dir = _start_run(cfg, distribute.worker_run_dir(strategy, run_dir))
    replicas = strategy.num_replicas_in_sync
    splits, toks, (train_ds, val_ds, stats, position) = prepare_data(cfg, run_dir, replicas)
    training.reseed_host(cfg.seed)  # preparing a TFDS data set the first time draws numbers
    train_ds, val_ds = (distribute.pad_batches(ds, replicas) for ds in (train_ds, val_ds))
    with strategy.scope():  # every variable, the optimizer's slots included
        model = build_model(cfg, toks, train_ds)
        resume_state = _resume_state(cfg, run_dir, model)
    if cfg.trainer.strategy == "multi_worker":
        distribute.check_same_vocabularies(strategy, toks)
        distribute.use_training_loop(model, strategy)
    translator = make_translator(model, toks, cfg.decode)
    translate_fn = tf.function(translator.translate, input_signature=TEXT_SIGNATURE)
    dev = _dev_evaluation(cfg, translator, translate_fn, splits["validation"], run_dir)
    history, out_of_time = training.fit(
        model,
        train_ds,
        val_ds,
        run_dir=run_dir,
        epochs=cfg.trainer.epochs,
        max_minutes=cfg.trainer.max_minutes,
        log_every_n_steps=cfg.trainer.log_every_n_steps,
        train_stats=stats,
        position=position,
        keep_checkpoints=cfg.trainer.keep_checkpoints,
        checkpoint_every_n_steps=cfg.trainer.checkpoint_every_n_steps,
        callbacks=[dev, *_schedule_callbacks(cfg.trainer), *_memory_callbacks(cfg.trainer)],
        resume=resume_state,
        profile_steps=cfg.trainer.profile_steps,
    )
    train_seconds = time.monotonic() - start
    memory.release_training_graphs(model)
    weights = _final_weights(model, run_dir / "checkpoints", cfg.trainer)
    results = {"validation": dev.evaluate_now(len(history))}
    results["test"] = _test_evaluation(cfg, translate_fn, splits["test"], run_dir)
    monitoring.write_final_metrics(str(run_dir / "tensorboard" / "validation"), results,
                                   len(history))  # fmt: skip
    if cfg.export:
        export_saved_model(translator, run_dir / "export")
    metrics = _metrics(results, history, stats, train_seconds, out_of_time, model, start)
    metrics.update(final_weights=weights, strategy=cfg.trainer.strategy, replicas=replicas)
    atomic_write_json(run_dir / "metrics.json", metrics)
    if chief:
        _report(run_dir, metrics, cfg.export)
    distribute.finish_run_dir(strategy, run_dir)
    return metrics


def build_model(cfg, toks, train_ds):
    """The compiled Translator the config describes, for these tokenizers."""
    return training.build_translator(
        vocabulary_size(toks[0]),
        vocabulary_size(toks[1]),
        optimizer=optimizer_from_config(cfg.trainer, train_ds),
        label_smoothing=cfg.trainer.label_smoothing,
        clipnorm=cfg.trainer.clipnorm,
        param_init=cfg.model.param_init,
        **{k: cfg.model[k] for k in MODEL_KEYS},
    )


def optimizer_from_config(trainer, train_ds):
    total_steps = 0
    if trainer.schedule == "cosine":
        total_steps = trainer.epochs * training.count_batches(train_ds)
    schedule = optim.learning_rate_schedule(
        trainer.schedule,
        trainer.learning_rate,
        warmup_steps=trainer.warmup_steps,
        decay_start_step=trainer.decay_start_step,
        decay_every_steps=trainer.decay_every_steps,
        total_steps=total_steps,
    )
    return optim.make_optimizer(trainer.optimizer, schedule, weight_decay=trainer.weight_decay)


def _resume_state(cfg, run_dir, model):
    """Resumable state in checkpoints/resume (not under multi_worker: its workers would need
    to restore together)."""
    if cfg.trainer.strategy == "multi_worker":
        return None
    return resume.ResumeState(run_dir / "checkpoints" / "resume", model)


def _memory_callbacks(trainer):
    every = trainer.release_memory_every_n_steps
    return [memory.ReleaseFreeMemory(every)] if every > 0 else []


def _schedule_callbacks(trainer):
    """Plateau decay and early stopping, both driven by dev BLEU (`bleu_every_n_epochs`,
    `bleu_every_n_steps`)."""
    found = []
    if trainer.schedule == "plateau":
        found.append(optim.ReduceOnPlateau(trainer.plateau_factor, trainer.plateau_patience))
    if trainer.early_stopping_patience:
        found.append(DevBleuEarlyStopping(trainer.early_stopping_patience))
    return found


def _final_weights(model, checkpoint_dir, trainer):
    """Loads the weights the run evaluates and exports: last, best, or an average of the last K."""
    if trainer.average_last_checkpoints > 1:
        paths = checkpoints.last_epoch_checkpoints(checkpoint_dir, trainer.average_last_checkpoints)
        checkpoints.average_checkpoints(model, paths)
        checkpoints.save_weights_atomically(model, checkpoint_dir / "averaged.weights.h5")
        return f"average of {[p.name for p in paths]}"
    if trainer.final_weights == "best" and (checkpoint_dir / "best.weights.h5").exists():
        model.load_weights(checkpoint_dir / "best.weights.h5")
        return "best.weights.h5"
    return "last"


def _start_run(cfg, run_dir):
    absl.logging.set_verbosity(absl.logging.WARNING)  # TFDS logs every file it opens
    tfds.disable_progress_bar()
    run_dir = writable_dir(run_dir, "hydra.run.dir")
    training.set_seed(cfg.seed)
    training.configure_precision(cfg.trainer.precision)
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg))
    hparams = monitoring.flatten_config(OmegaConf.to_container(cfg, resolve=True))
    monitoring.write_hparams(str(run_dir / "tensorboard"), hparams, run_dir.name)
    return run_dir


def prepare_data(cfg, run_dir, num_replicas=1):
    splits = load_splits(cfg.data)
    toks, _ = training.prepare_tokenizers(
        splits["train"], run_dir / "tokenizers", **cfg.data.tokenizer
    )
    datasets = training.make_datasets(
        splits,
        *toks,
        max_source_length=cfg.data.max_source_length,
        max_target_length=cfg.data.max_target_length,
        batch_tokens=cfg.data.batch_tokens,
        batch_sentences=cfg.data.batch_sentences,
        shuffle_buffer=cfg.data.shuffle_buffer,
        pool_size=cfg.data.pool_size,
        pad_to_multiple=cfg.data.pad_to_multiple,
        seed=cfg.seed,
        num_replicas=num_replicas,
    )
    return splits, toks, datasets


def _dev_evaluation(cfg, translator, translate_fn, validation, run_dir):
    """The DevEvaluation callback: BLEU/chrF on at most K dev sentences, samples, attention."""
    sources, references = split_texts(validation, cfg.trainer.validation_max_sentences)
    exact = cfg.data.source == "numbers"
    log_dir = str(run_dir / "tensorboard" / "validation")
    n = cfg.trainer.tensorboard_samples

    def scores():
        return evaluate(
            translate_fn, sources, references, batch_size=cfg.decode.batch_size,
            parallel=cfg.decode.parallel_batches, exact_match=exact,
        )[0]  # fmt: skip

    def samples(writer, step):
        if n:
            found = monitoring.attention_samples(translator, sources[:n])
            monitoring.write_samples(writer, found, references[:n], step)

    return DevEvaluation(scores, samples, log_dir, cfg.trainer.bleu_every_n_epochs,
                         cfg.trainer.bleu_every_n_steps)  # fmt: skip


def _test_evaluation(cfg, translate_fn, test, run_dir):
    scores, hypotheses = evaluate(
        translate_fn,
        *split_texts(test),
        batch_size=cfg.decode.batch_size,
        parallel=cfg.decode.parallel_batches,
        exact_match=cfg.data.source == "numbers",
    )
    atomic_write_text(run_dir / "test_hypotheses.txt", "\n".join(hypotheses) + "\n")
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


def _report(run_dir, metrics, exported):
    test = metrics["test"]
    lines = [
        f"run folder:  {run_dir}",
        f"test BLEU:   {test['bleu']:.2f}  ({test['bleu_signature']})",
        f"test chrF:   {test['chrf']:.2f}",
    ]
    if "exact_match" in test:
        lines.append(f"exact match: {test['exact_match']:.2f}%")
    lines += [
        f"metrics:     {run_dir / 'metrics.json'}",
        f"TensorBoard: tensorboard --logdir {run_dir / 'tensorboard'}",
        f"checkpoints: {run_dir / 'checkpoints'}",
    ]
    if exported:
        lines.append(f"SavedModel:  {run_dir / 'export'}  (serving_default: text -> translation)")
    lines.append(f"total time:  {metrics['total_seconds']:.0f} s")
    print("\n".join(lines), flush=True)
    log.info("metrics: %s", json.dumps({k: metrics[k] for k in ("validation", "test")}))


@hydra.main(version_base="1.3", config_path="pkg://seq2seq.conf", config_name="config")
def main(cfg: DictConfig) -> float:
    try:
        metrics = train(cfg, HydraConfig.get().runtime.output_dir)
    except training.TrainingInterrupted as e:
        print(f"seq2seq.train: {e}", file=sys.stderr, flush=True)
        sys.exit(130)
    except (ValueError, OSError, FloatingPointError, ConnectionError) as e:
        sys.exit(f"seq2seq.train: error: {e}")  # one line, exit code 1
    return metrics["test"]["bleu"]


def compose_config(overrides=()):
    """The config `python -m seq2seq.train <overrides>` composes, without running it (tests,
    the benchmark, notebooks)."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(version_base="1.3", config_module="seq2seq.conf"):
        return compose("config", overrides=list(overrides))


def main_with_overrides(overrides):
    """`python -m seq2seq.train <overrides>` from Python (tests, notebooks)."""
    sys.argv = [sys.argv[0], *overrides]
    main()


if __name__ == "__main__":
    main()
