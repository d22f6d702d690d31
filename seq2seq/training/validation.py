"""The one validation of a training configuration, before any work starts.

Every field's range or choices (its `metadata` in `seq2seq.config`), then the rules between
settings; the first key at fault is named in a one-line error.
"""

import dataclasses
import importlib
import logging
import math

from seq2seq.inference.settings import CONFIG_NAMES, check_beam_settings
from seq2seq.model.translator import check_architecture

log = logging.getLogger(__name__)


def validate(config):
    """Checks every setting's range or choices, then the rules between settings.

    Raises:
        ValueError: one line naming the first key at fault, its value and what it takes.
    """
    _check_fields(config, "")
    _check_relations(config)
    return config


def _check_fields(node, prefix):
    for item in dataclasses.fields(node):
        value, key = getattr(node, item.name), f"{prefix}{item.name}"
        if dataclasses.is_dataclass(value):
            _check_fields(value, f"{key}.")
        elif value is not None:
            problem = _range_problem(value, item.metadata)
            if problem:
                separator = " " if problem.startswith("is unknown") else ": "
                raise ValueError(f"{key}={value!r}{separator}{problem}")


def _range_problem(value, rules):
    """What is wrong with `value` under `rules` (a field's metadata), or None."""
    if "choices" in rules:
        choices = _choices(rules["choices"])
        return None if value in choices else f"is unknown; choose one of {sorted(choices)}"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    bounds = (
        ("min", lambda b: value >= b, "at least"),
        ("above", lambda b: value > b, "above"),
        ("max", lambda b: value <= b, "at most"),
        ("below", lambda b: value < b, "below"),
    )
    broken = [
        f"{words} {rules[name]}"
        for name, holds, words in bounds
        if name in rules and not holds(rules[name])
    ]
    if not broken:
        return None
    allowed = [f"{words} {rules[name]}" for name, _, words in bounds if name in rules]
    return "must be " + " and ".join(allowed)


def _choices(spec):
    if isinstance(spec, tuple):
        return spec
    module, name = spec.split(":")
    return tuple(getattr(importlib.import_module(module), name))


def _check_relations(config):
    decode, trainer, model = config.decode, config.trainer, config.model
    check_beam_settings(decode.beam_size, decode.alpha, decode.n_best, names=CONFIG_NAMES)
    if 1 < trainer.average_last_checkpoints > trainer.keep_checkpoints:
        raise ValueError(
            f"trainer.average_last_checkpoints={trainer.average_last_checkpoints} needs "
            f"trainer.keep_checkpoints >= {trainer.average_last_checkpoints} "
            f"(it is {trainer.keep_checkpoints})"
        )
    steps = trainer.profile_steps
    if steps is not None and (len(steps) != 2 or not 0 < steps[0] <= steps[1]):
        raise ValueError(
            f"trainer.profile_steps={steps}: must be [first, last] with 0 < first <= last"
        )
    check_architecture(**model.architecture())
    _check_sampling(config.data.tokenizer)
    _check_shared_embeddings(model, config.data.tokenizer)
    _check_accumulation(trainer)


def _check_shared_embeddings(model, tokenizer):
    if model.share_embeddings and not (tokenizer.joint and not tokenizer.restrict_vocabulary):
        raise ValueError(
            "model.share_embeddings=true needs one vocabulary for both sides: "
            "data.tokenizer.joint=true and data.tokenizer.restrict_vocabulary=false (they are "
            f"{str(tokenizer.joint).lower()} and {str(tokenizer.restrict_vocabulary).lower()})"
        )


def _check_accumulation(trainer):
    if trainer.accumulate_steps == 1:
        return
    if trainer.strategy != "default":
        raise ValueError(
            f"trainer.accumulate_steps={trainer.accumulate_steps} needs trainer.strategy=default "
            f"(it is {trainer.strategy!r}): the replicas' gradients are not accumulated"
        )
    if trainer.precision == "mixed_float16":
        raise ValueError(
            f"trainer.accumulate_steps={trainer.accumulate_steps} cannot go with "
            "trainer.precision=mixed_float16 (its loss scale changes between batches); "
            "use mixed_bfloat16 or float32"
        )


def _check_sampling(tokenizer):
    if tokenizer.sample_alpha and tokenizer.model_type != "unigram":
        raise ValueError(
            f"data.tokenizer.sample_alpha={tokenizer.sample_alpha} needs "
            f"data.tokenizer.model_type=unigram (it is {tokenizer.model_type!r})"
        )


def with_dev_schedule(config):
    """`config`, with dev BLEU every epoch when plateau decay or early stopping needs it and no
    dev evaluation is scheduled (they would otherwise never act); says so in the log."""
    trainer = config.trainer
    needs_bleu = trainer.schedule == "plateau" or trainer.early_stopping_patience > 0
    if needs_bleu and not (trainer.bleu_every_n_epochs or trainer.bleu_every_n_steps):
        reason = "schedule=plateau" if trainer.schedule == "plateau" else "early_stopping_patience"
        log.info("trainer.%s needs dev BLEU: trainer.bleu_every_n_epochs=1", reason)
        trainer = dataclasses.replace(trainer, bleu_every_n_epochs=1)
        config = dataclasses.replace(config, trainer=trainer)
    return config
