"""Typed configuration schema: Hydra checks every YAML value and override against it.

Plain dataclasses (no Hydra import): the entry points register them in Hydra's ConfigStore.
Defaults live in the YAML files under conf/; MISSING fields must come from there.
"""

from dataclasses import dataclass, field

from omegaconf import MISSING


@dataclass
class TokenizerConfig:
    vocab_size: int = MISSING
    model_type: str = MISSING
    joint: bool = MISSING
    restrict_vocabulary: bool = MISSING
    max_sentences: int = MISSING


@dataclass
class DataConfig:
    source: str = MISSING
    data_dir: str = MISSING
    source_language: str = MISSING
    target_language: str = MISSING
    max_source_length: int = MISSING
    max_target_length: int = MISSING
    batch_tokens: int = MISSING
    batch_sentences: int | None = None
    shuffle_buffer: int = MISSING
    pool_size: int = MISSING
    pad_to_multiple: int = 1
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    # numbers
    train_size: int | None = None
    validation_size: int | None = None
    test_size: int | None = None
    min_number: int | None = None
    max_number: int | None = None
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
    embedding_dim: int = MISSING
    units: int = MISSING
    encoder_layers: int = MISSING
    decoder_layers: int = MISSING
    bidirectional: bool = MISSING
    attention: str = MISSING
    dropout: float = MISSING
    bridge: str = MISSING
    residual: bool = MISSING
    input_feeding: bool = MISSING
    tie_embeddings: bool = MISSING
    param_init: float = MISSING


@dataclass
class TrainerConfig:
    epochs: int = MISSING
    max_minutes: float | None = None
    optimizer: str = MISSING
    learning_rate: float = MISSING
    weight_decay: float = MISSING
    clipnorm: float | None = None
    schedule: str = MISSING
    warmup_steps: int = MISSING
    decay_start_step: int = MISSING
    decay_every_steps: int = MISSING
    plateau_factor: float = MISSING
    plateau_patience: int = MISSING
    early_stopping_patience: int = MISSING
    keep_checkpoints: int = MISSING
    checkpoint_every_n_steps: int = MISSING
    release_memory_every_n_steps: int = MISSING
    average_last_checkpoints: int = MISSING
    final_weights: str = MISSING
    label_smoothing: float = MISSING
    precision: str = MISSING
    log_every_n_steps: int = MISSING
    bleu_every_n_epochs: int = MISSING
    bleu_every_n_steps: int = MISSING
    validation_max_sentences: int = MISSING
    tensorboard_samples: int = MISSING
    profile_steps: list[int] | None = None
    strategy: str = MISSING


@dataclass
class DecodeConfig:
    beam_size: int = MISSING
    alpha: float = MISSING
    n_best: int = MISSING
    max_length_ratio: float = MISSING
    max_length_offset: int = MISSING
    max_input_length: int = MISSING
    batch_size: int = MISSING
    parallel_batches: int = MISSING
    stopping: str = MISSING
    intra_op_threads: int | None = None


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    seed: int = MISSING
    export: bool = MISSING
