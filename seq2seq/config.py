"""The typed configuration: its schema, and reading a run's saved copy.

The dataclasses below are the schema Hydra checks every YAML value and override against (types);
`seq2seq.training.validation` then checks ranges, choices and the rules between settings before
any work starts. Defaults live in the YAML files under `conf/` only: `MISSING` fields must come
from there. The entry points compose the configuration with Hydra and hand the library these
plain dataclass objects (`to_config`); Hydra itself is imported only here, when composing.

A field's `metadata` says what values it takes: `min` / `max` (inclusive), `above` (exclusive),
`below` (exclusive), or `choices`: a tuple, or `"module:NAME"`, the registry whose keys are the
choices (so that the registry stays the one list of names).
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException


def _option(default=MISSING, **rules):
    return field(default=default, metadata=rules)


@dataclass
class TokenizerConfig:
    vocab_size: int = _option(min=8)
    model_type: str = _option(choices="seq2seq.data.tokenizers:MODEL_TYPES")
    joint: bool = MISSING
    restrict_vocabulary: bool = MISSING
    max_sentences: int = _option(min=1)
    sample_alpha: float = _option(min=0.0)
    nbest_size: int = _option(min=2)


@dataclass
class DataConfig:
    source: str = _option(choices="seq2seq.data.sources:SOURCES")
    data_dir: str = MISSING
    source_language: str = MISSING
    target_language: str = MISSING
    max_source_length: int = _option(min=1)
    max_target_length: int = _option(min=1)
    batch_tokens: int = _option(min=1)
    batch_sentences: int | None = _option(None, min=1)
    shuffle_buffer: int = _option(min=1)
    pool_size: int = _option(min=1)
    pad_to_multiple: int = _option(1, min=1)
    drop_long_pairs: bool = MISSING
    max_length_ratio: float | None = _option(None, min=1.0)
    splits: dict[str, str] = field(default_factory=dict)  # ours -> the data set's split names
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    # numbers
    train_size: int | None = _option(None, min=1)
    validation_size: int | None = _option(None, min=1)
    test_size: int | None = _option(None, min=1)
    min_number: int | None = _option(None, min=0)
    max_number: int | None = _option(None, min=0)
    seed: int | None = None
    # multi30k
    manual_dir: str | None = None
    # text
    train_prefix: str | None = None
    validation_prefix: str | None = None
    test_prefix: str | None = None
    # tfds catalog
    name: str | None = None


@dataclass
class ModelConfig:
    embedding_dim: int = _option(min=1)
    units: int = _option(min=1)
    encoder_layers: int = _option(min=1)
    decoder_layers: int = _option(min=1)
    bidirectional: bool = MISSING
    attention: str = _option(choices="seq2seq.model.attention:ATTENTIONS")
    dropout: float = _option(min=0.0, below=1.0)
    bridge: str = _option(choices="seq2seq.model.translator:BRIDGES")
    residual: bool = MISSING
    input_feeding: bool = MISSING
    tie_embeddings: bool = MISSING
    share_embeddings: bool = MISSING
    source_word_dropout: float = _option(min=0.0, below=1.0)
    param_init: float = _option(min=0.0)

    def architecture(self) -> dict:
        """The `Translator` arguments: every field but the initialization."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "param_init"}


@dataclass
class TrainerConfig:
    epochs: int = _option(min=0)
    max_minutes: float | None = _option(None, above=0.0)
    optimizer: str = _option(choices="seq2seq.training.optim:OPTIMIZERS")
    learning_rate: float = _option(min=0.0)
    weight_decay: float = _option(min=0.0)
    clipnorm: float | None = _option(None, above=0.0)
    schedule: str = _option(choices="seq2seq.training.optim:SCHEDULES")
    warmup_steps: int = _option(min=0)
    decay_start_step: int = _option(min=0)
    decay_every_steps: int = _option(min=1)
    plateau_factor: float = _option(above=0.0, max=1.0)
    plateau_patience: int = _option(min=1)
    early_stopping_patience: int = _option(min=0)
    keep_checkpoints: int = _option(min=0)
    checkpoint_every_n_steps: int = _option(min=0)
    release_memory_every_n_steps: int = _option(min=0)
    average_last_checkpoints: int = _option(min=1)
    final_weights: str = _option(choices=("last", "best"))
    label_smoothing: float = _option(min=0.0, below=1.0)
    accumulate_steps: int = _option(min=1)
    ema_decay: float = _option(min=0.0, below=1.0)
    init_from: str | None = None
    precision: str = _option(choices=("float32", "mixed_float16", "mixed_bfloat16"))
    log_every_n_steps: int = _option(min=0)
    bleu_every_n_epochs: int = _option(min=0)
    bleu_every_n_steps: int = _option(min=0)
    validation_max_sentences: int = _option(min=1)
    tensorboard_samples: int = _option(min=0)
    profile_steps: list[int] | None = None
    deterministic: bool = MISSING
    strategy: str = _option(choices="seq2seq.training.distribute:STRATEGIES")


@dataclass
class DecodeConfig:
    beam_size: int = MISSING  # these three: seq2seq.inference.settings
    alpha: float = MISSING
    n_best: int = MISSING
    max_length_ratio: float = _option(above=0.0)
    max_length_offset: int = _option(min=1)
    max_input_length: int = _option(min=1)
    batch_size: int = _option(min=1)
    parallel_batches: int = _option(min=1)
    stopping: str = _option(choices="seq2seq.inference.beam:STOPPING_RULES")
    intra_op_threads: int | None = _option(None, min=1)
    min_length: int = _option(min=0)  # the command-line tools: seq2seq.inference.settings
    no_repeat_ngram_size: int = _option(min=0)
    prefix: str = MISSING


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    seed: int = MISSING
    export: bool = MISSING


# === Composing and reading configurations ===


def compose(overrides=()) -> Config:
    """The configuration `python -m seq2seq.train <overrides>` runs with, without running it."""
    return to_config(_compose(overrides))


def register_schema():
    """Puts the schema in Hydra's ConfigStore as `base_config` (`conf/config.yaml` uses it)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="base_config", node=Config)


def _compose(overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    register_schema()
    if GlobalHydra.instance().is_initialized():  # inside `python -m seq2seq.train`
        return hydra_compose("config", overrides=list(overrides))
    with initialize_config_module(version_base="1.3", config_module="seq2seq.conf"):
        return hydra_compose("config", overrides=list(overrides))


def to_config(composed) -> Config:
    """Hydra's composed DictConfig as the plain `Config` objects the library takes.

    Raises:
        ValueError: a setting is missing (`???`) or does not resolve; the key is named.
    """
    try:
        return OmegaConf.to_object(composed)
    except OmegaConfBaseException as error:
        raise ValueError(str(error).splitlines()[0]) from None


def override(node, settings, prefix=""):
    """A copy of the dataclass `node` with `KEY=VALUE` `settings` applied (typed as the schema).

    Raises:
        ValueError: an unknown key or a wrongly typed value, named with `prefix`.
    """
    try:
        merged = OmegaConf.merge(OmegaConf.structured(node), OmegaConf.from_dotlist(list(settings)))
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        raise ValueError(f"{prefix}{str(error).splitlines()[0]}") from None


def to_yaml(config: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(config))


def to_dict(config: Config) -> dict:
    return dataclasses.asdict(config)


def load_run_config(path) -> Config:
    """A run folder's `config.yaml` (the file or its folder), with the settings added to the schema
    since it was written taken from today's defaults for its data source.

    Raises:
        ValueError: the file is missing, not YAML, or holds a value the schema refuses.
    """
    path = Path(path)
    path = path / "config.yaml" if path.is_dir() else path
    try:
        saved = OmegaConf.load(path)
    except Exception as error:  # I/O or YAML syntax
        raise ValueError(f"{path}: cannot read: {error}") from None
    source = OmegaConf.select(saved, "data.source") or "numbers"
    known = [item.name for item in dataclasses.fields(Config) if item.name in saved]
    saved = OmegaConf.masked_copy(saved, known)  # e.g. an ensemble's list of members
    try:
        defaults = _compose([f"data={source}"])
        return OmegaConf.to_object(OmegaConf.merge(defaults, saved))
    except Exception as error:
        raise ValueError(f"{path}: {str(error).splitlines()[0]}") from None


def decode_defaults() -> DecodeConfig:
    """`conf/decode/default.yaml`: the decoding defaults of the command-line tools too."""
    from importlib import resources

    text = (resources.files("seq2seq.conf") / "decode" / "default.yaml").read_text("utf-8")
    merged = OmegaConf.merge(OmegaConf.structured(DecodeConfig), OmegaConf.create(text))
    return OmegaConf.to_object(merged)
