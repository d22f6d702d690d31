"""benchmarks/profile_breakdown.py: a profile's op times grouped into the parts of a step."""

import pytest

from benchmarks import profile_breakdown

# Op names as TensorFlow's profiler reports them for a Translator training step.
OPS = [
    ("IDLE", "IDLE", 3000.0),
    (
        "translator_1/decoder_1/lstm_0_1/while/body/_321/translator_1/decoder_1/lstm_0_1/while/MatMul",
        "_MklMatMul",
        1000.0,
    ),
    (
        "translator_1/encoder_1/bidirectional_0_1/forward_lstm_0_1/while/body/_1/x/while/Sigmoid_2",
        "Sigmoid",
        500.0,
    ),
    ("while_3/body/_721/while_3/MatMul", "_MklMatMul", 800.0),
    ("StatefulPartitionedCall/while_3/body/_721/while_3/concat", "ConcatV2", 200.0),  # under fit
    (
        "gradient_tape/translator_1/decoder_1/output_projection_1/Tensordot/MatMul/MatMul",
        "_MklMatMul",
        2000.0,
    ),
    (
        "gradient_tape/translator_1/decoder_1/output_projection_1/BiasAdd/BiasAddGrad",
        "BiasAddGrad",
        400.0,
    ),
    (
        "translator_1/encoder_1/bidirectional_1_1/backward_lstm_1_1/ReverseSequence",
        "ReverseSequence",
        300.0,
    ),
    ("compile_loss/masked_cross_entropy/LogSoftmax", "LogSoftmax", 600.0),
    ("adam/ResourceApplyAdam_22", "ResourceApplyAdam", 700.0),
    ("translator_1/decoder_1/dropout_1_3/stateless_dropout/x", "StatelessRandomUniformV2", 100.0),
    ("ArgMax", "ArgMax", 400.0),
]


def test_ops_are_grouped_by_loop_scope_and_type_per_step():
    rows = {
        label: (per_step, share)
        for label, per_step, share in profile_breakdown.breakdown(OPS, steps=2)
    }
    expected_ms = {
        "idle": 1.5,
        "LSTM forward loops: matmul": 0.5,
        "LSTM forward loops: other": 0.25,
        "LSTM gradient loops: matmul": 0.4,
        "LSTM gradient loops: other": 0.1,
        "matmuls and einsums outside the loops": 1.0,
        "output projection": 0.2,
        "encoder": 0.15,
        "loss": 0.3,
        "optimizer": 0.35,
        "dropout": 0.05,
        "unscoped (metrics, loss gradient, ...)": 0.2,
    }
    assert {label: per_step for label, (per_step, _) in rows.items()} == pytest.approx(expected_ms)
    assert sum(share for _, share in rows.values()) == pytest.approx(1.0)
    assert next(iter(rows)) == "idle"  # largest first


def test_a_folder_without_a_profile_is_named(tmp_path):
    with pytest.raises(SystemExit, match=str(tmp_path)):
        profile_breakdown.read_profile(tmp_path)


def test_steps_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        profile_breakdown.main(["somewhere", "--steps", "0"])
    assert "--steps 0" in capsys.readouterr().err
