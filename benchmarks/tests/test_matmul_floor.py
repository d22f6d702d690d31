"""benchmarks/matmul_floor.py: every matmul of a training step, and their timed sum."""

import pytest
import tensorflow as tf

from benchmarks import matmul_floor
from seq2seq.model.translator import Translator

REFERENCE = dict(
    batch=64,
    source_length=15,
    target_length=16,
    embedding_dim=256,
    units=512,
    encoder_layers=2,
    decoder_layers=2,
    vocabulary=5483,
)


def test_reference_step_costs_what_the_speed_issue_computed():
    """Issue 6 estimated 59 MFLOP a target token, of which forward 5.2 encoder + 14.5 decoder."""
    matmuls = matmul_floor.step_matmuls(**REFERENCE)
    tokens = REFERENCE["batch"] * REFERENCE["target_length"]
    total = sum(m.flops for m in matmuls) / tokens / 1e6
    forward = sum(m.flops for m in matmuls if "d_" not in m.name) / tokens / 1e6
    assert total == pytest.approx(59, rel=0.03)
    assert forward == pytest.approx(5.2 + 14.5, rel=0.03)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_forward_weight_shapes_are_the_models_kernels(bidirectional):
    sizes = dict(embedding_dim=6, units=8, encoder_layers=2, decoder_layers=3)
    model = Translator(11, 13, bidirectional=bidirectional, **sizes)
    ones = tf.ones((1, 2), tf.int32)
    model({"encoder_token_ids": ones, "decoder_token_ids": ones})
    kernels = {
        tuple(w.shape) for w in model.weights if len(w.shape) == 2 and "embedding" not in w.path
    }
    matmuls = matmul_floor.step_matmuls(
        2, 3, 4, vocabulary=13, bidirectional=bidirectional, **sizes
    )
    weights = {(m.k, m.n) for m in matmuls if "d_" not in m.name and m.batch == 1}
    assert weights == kernels


def test_prints_each_matmul_and_the_floor(capsys):
    matmul_floor.main(
        [
            "--batch",
            "2",
            "--source-length",
            "3",
            "--target-length",
            "4",
            "--embedding-dim",
            "4",
            "--units",
            "8",
            "--vocabulary",
            "10",
            "--repeats",
            "1",
            "--dtype",
            "float32",
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + len(matmul_floor.step_matmuls(2, 3, 4, 4, 8, 2, 2, 10)) + 1
    assert lines[-1].startswith("total: ") and "8 target tokens a step" in lines[-1]


def test_rejects_a_size_below_one():
    with pytest.raises(SystemExit):
        matmul_floor.parse_args(["--units", "0"])
