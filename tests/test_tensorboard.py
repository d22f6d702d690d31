"""Reads the tiny run's event files with TensorBoard's own reader and checks what is there."""

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams import metrics as hparams_metrics
from tensorboard.plugins.hparams import plugin_data_pb2


@pytest.fixture(scope="module")
def events(tiny_run):
    run_dir, _, _ = tiny_run
    multiplexer = EventMultiplexer().AddRunsFromDirectory(str(run_dir / "tensorboard"))
    multiplexer.Reload()
    return multiplexer


def _values(events, run, tag):
    return [(e.step, tf.make_ndarray(e.tensor_proto)) for e in events.Tensors(run, tag)]


def test_training_scalars_are_logged_every_epoch_and_every_n_steps(events):
    tags = set(events.Runs()["train"]["tensors"])
    for name in (
        "loss",
        "perplexity",
        "token_accuracy",
        "learning_rate",
        "gradient_norm",
        "source_tokens_per_second",
        "target_tokens_per_second",
    ):
        epochs = _values(events, "train", f"epoch_{name}")
        assert [step for step, _ in epochs] == list(range(1, 9)), name
        assert all(np.isfinite(v) and v >= 0 for _, v in epochs), name
    assert {"batch_loss", "batch_perplexity", "batch_gradient_norm"} <= tags
    losses = [float(v) for _, v in _values(events, "train", "epoch_loss")]
    assert losses[-1] < losses[0]
    ppl = _values(events, "train", "epoch_perplexity")
    nll = _values(events, "train", "epoch_nll")
    np.testing.assert_allclose(ppl[-1][1], np.exp(nll[-1][1]), rtol=1e-4)


def test_dev_loss_perplexity_bleu_and_chrf(events):
    for name in ("loss", "perplexity"):
        assert len(_values(events, "validation", f"epoch_{name}")) == 8
    bleu = _values(events, "validation", "dev/bleu")
    assert [step for step, _ in bleu] == [4, 8, 8]  # every 4 epochs, then the final evaluation
    assert all(0 <= v <= 100 for _, v in bleu + _values(events, "validation", "dev/chrf"))
    by_step = _values(events, "validation", "dev_by_step/bleu")
    assert [step for step, _ in by_step] == [50]  # every 50 steps of 8 x 9


def test_samples_text_and_attention_images(events):
    text = _values(events, "validation", "dev/samples")
    assert text and "| source | reference | hypothesis |" in text[-1][1].item().decode()
    for i in range(4):
        images = events.Tensors("validation", f"dev/attention_{i}")
        width, height = (int(x) for x in images[-1].tensor_proto.string_val[:2])
        assert width > 50 and height > 50
        png = images[-1].tensor_proto.string_val[2]
        assert png.startswith(b"\x89PNG")
        histogram = _values(events, "validation", f"dev/attention_row_sums_{i}")[-1][1]
        assert histogram[:, 0].min() >= 0.999 and histogram[:, 1].max() <= 1.001  # rows sum to 1


def _plugin_data(events, run, tag):
    content = events.SummaryMetadata(run, tag).plugin_data.content
    return plugin_data_pb2.HParamsPluginData.FromString(content)


def test_hparams_of_the_run_and_final_metrics_join_as_tensorboard_joins_them(events):
    sessions = [
        run
        for run, tags in events.Runs().items()
        if "_hparams_/session_start_info" in tags["tensors"]
    ]
    assert sessions == ["."]
    info = _plugin_data(events, ".", "_hparams_/session_start_info").session_start_info
    assert info.hparams["model.units"].number_value == 64
    assert info.hparams["data.source"].string_value == "numbers"
    declared = _plugin_data(events, ".", "_hparams_/experiment").experiment.metric_infos
    assert {m.name.tag for m in declared} == {
        "final/test_bleu",
        "final/test_chrf",
        "final/validation_bleu",
        "final/validation_chrf",
    }
    for metric in declared:  # where TensorBoard's HParams plugin looks for each value
        run, tag = hparams_metrics.run_tag_from_session_and_metric(sessions[0], metric.name)
        [value] = _values(events, run, tag)
        assert 0 <= value[1] <= 100, metric.name.tag
