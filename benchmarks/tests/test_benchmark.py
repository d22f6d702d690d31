"""The benchmark harness on the real Multi30k files, with a small model and few steps."""

import json

import pytest

from benchmarks import benchmark
from seq2seq.inference.threads import decoding_intra_op_threads
from tests.conftest import MULTI30K

needs_multi30k = pytest.mark.skipif(
    not (MULTI30K / "train.en.gz").exists(), reason=f"no Multi30k raw files in {MULTI30K}"
)


@needs_multi30k
def test_benchmark_prints_throughput_memory_and_bleu(tmp_path, tfds_dir, capsys):
    small = [
        "model.units=32",
        "model.embedding_dim=16",
        "model.encoder_layers=1",
        "model.decoder_layers=1",
        "data.tokenizer.vocab_size=300",
    ]
    result = benchmark.main(
        [
            "--steps",
            "3",
            "--warmup",
            "1",
            "--repeats",
            "2",
            "--decode-sentences",
            "24",
            "--beam-size",
            "3",
            "--split",
            "validation",
            "--workdir",
            str(tmp_path),
            f"data.manual_dir={MULTI30K}",
            f"data.data_dir={tfds_dir}",
            "decode.stopping=top_beam",
            *small,
        ]
    )
    printed = json.loads(capsys.readouterr().out)  # stdout holds the JSON only
    assert printed == json.loads(json.dumps(result))
    for key in (
        "train_target_tokens_per_second",
        "train_source_tokens_per_second",
        "train_target_tokens_per_cpu_second",
        "greedy_sentences_per_second",
        "beam3_sentences_per_second",
        "peak_rss_mb",
    ):
        assert result[key] > 0, key
    assert len(result["train_runs"]) == 2 and len(result["beam3_runs"]) == 2
    assert 0 <= result["greedy_validation_bleu"] <= 100
    assert 0 <= result["beam3_validation_bleu"] <= 100
    assert result["config"]["split"] == "validation"
    # decoded in a second process, with the decoding threads (training kept TensorFlow's)
    assert result["decode_intra_op_threads"] == decoding_intra_op_threads(2)
    assert result["versions"]["tensorflow"]
