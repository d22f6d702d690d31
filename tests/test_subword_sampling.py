"""Subword regularization: seeded samples, new ones every epoch, the same ones after a resume,
and the deterministic segmentation everywhere else."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from seq2seq.data import pipeline, tokenizers
from seq2seq.data.subword_sampling import SubwordSampler
from tests.conftest import REPO

_RNG = np.random.default_rng(0)
_SYLLABLES = "ka lo mi ne ru sa te vo ba di ge".split()
WORDS = ["".join(_RNG.choice(_SYLLABLES, _RNG.integers(1, 4))) for _ in range(60)]
LINES = [" ".join(_RNG.choice(WORDS, _RNG.integers(3, 9))) for _ in range(300)]
OTHER = [line.upper() for line in LINES]  # the target side: pieces the source never uses


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A joint unigram model with restricted vocabularies: (source path, target path)."""
    out = tmp_path_factory.mktemp("sp")
    return tokenizers.train_tokenizers(
        zip(LINES, OTHER),
        out,
        vocab_size=100,
        model_type="unigram",
        joint=True,
        restrict_vocabulary=True,
    )


def _sample(sampler, seed, lines=LINES[:40]):
    flat, lengths = sampler.sample(lines, seed)
    return np.split(flat, np.cumsum(lengths)[:-1])


def test_a_seed_gives_one_sample_and_other_seeds_others(models):
    sampler = SubwordSampler(models[0], alpha=0.1, nbest_size=16)
    first, again, other = _sample(sampler, 7), _sample(sampler, 7), _sample(sampler, 8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    best = tokenizers.load_tokenizer(models[0]).tokenize(LINES[:40]).to_list()
    assert sum(list(a) != b for a, b in zip(first, best)) > 5  # most lines differ from the best


def test_samples_keep_to_the_restricted_vocabulary(models):
    source = tokenizers.load_tokenizer(models[0])
    sampler = SubwordSampler(models[0], alpha=0.1, nbest_size=16)
    ids = np.concatenate([np.concatenate(_sample(sampler, seed)) for seed in range(20)])
    assert ids.max() < tokenizers.vocabulary_size(source)
    assert tokenizers.UNK_ID not in ids  # every piece sampled has an id of the source side
    text = source.detokenize(tf.RaggedTensor.from_row_lengths(*sampler.sample(LINES[:5], 3)))
    assert [t.decode() for t in text.numpy()] == LINES[:5]


def _datasets(models, alpha):
    toks = [tokenizers.load_tokenizer(p) for p in models]
    samplers = [SubwordSampler(p, alpha=alpha, nbest_size=16) for p in models] if alpha else None
    split = tf.data.Dataset.from_tensor_slices({"source": LINES, "target": OTHER})
    return pipeline.make_datasets(
        {"train": split, "validation": split.take(50)},
        *toks,
        max_source_length=30,
        max_target_length=30,
        batch_tokens=None,
        batch_sentences=16,
        shuffle_buffer=1000,
        seed=3,
        samplers=samplers,
    )


def _epoch(train, position, epoch, skip=0):
    position.set(epoch, skip)
    return [x["encoder_token_ids"].numpy() for x, _ in train]


def test_each_epoch_samples_anew_and_a_resumed_epoch_sees_the_same_batches(models):
    train, validation, _, position = _datasets(models, alpha=0.1)
    first, again = _epoch(train, position, 1), _epoch(train, position, 1)
    second = _epoch(train, position, 2)
    assert len(first) == len(again) and all(np.array_equal(a, b) for a, b in zip(first, again))
    restarted_train, _, _, restarted = _datasets(models, alpha=0.1)  # a new process's pipeline
    tail = _epoch(restarted_train, restarted, 1, skip=3)
    assert all(np.array_equal(a, b) for a, b in zip(first[3:], tail)) and len(tail) > 3
    assert _rows(first) != _rows(second)  # the pieces, not only the order, differ


def _rows(batches):
    return sorted(tuple(row[row != 0]) for batch in batches for row in batch)


def test_validation_batches_are_not_sampled(models):
    _, plain, _, _ = _datasets(models, alpha=0.0)
    _, sampled, _, _ = _datasets(models, alpha=0.1)
    for (x, y), (sx, sy) in zip(plain, sampled):
        np.testing.assert_array_equal(x["encoder_token_ids"], sx["encoder_token_ids"])
        np.testing.assert_array_equal(y, sy)


def test_a_seed_gives_the_same_sample_in_another_process(models):
    """SentencePiece's own sampling did not: its generator is seeded per thread."""
    code = (
        "import sys, numpy as np\n"
        "from seq2seq.data.subword_sampling import SubwordSampler\n"
        "from tests.test_subword_sampling import LINES\n"
        "flat, _ = SubwordSampler(sys.argv[1], alpha=0.1, nbest_size=16).sample(LINES[:40], 7)\n"
        "print(' '.join(map(str, flat)))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(models[0])],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    here = SubwordSampler(models[0], alpha=0.1, nbest_size=16).sample(LINES[:40], 7)[0]
    assert out.stdout.split() == [str(i) for i in here]
