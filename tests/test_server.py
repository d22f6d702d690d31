"""The server on 127.0.0.1 with the tiny export: TensorFlow Serving's API, /v1/translate, bad
requests; every answer compared with the export's own for the same inputs alone."""

import concurrent.futures
import json

import numpy as np
import pytest
import sentencepiece as spm
import tensorflow as tf

from seq2seq.inference.exported import load_export
from seq2seq.run_folder import RunFolder
from tests.serving import request, running_server

SENTENCES = ["dreihundert", "zwei", "siebenhundertelf", "neunzehn", "", "vierhundertzwei", "acht"]
OPTIONS = {"beam_size": 3, "alpha": 0.6, "n_best": 2}


@pytest.fixture(scope="module")
def export_dir(tiny_run):
    return tiny_run[0] / "export"


@pytest.fixture(scope="module")
def export(export_dir):
    return load_export(export_dir)


@pytest.fixture(scope="module")
def server(export_dir):
    with running_server(export_dir) as (url, service):
        yield url, service


def _alone(export, signature, texts, **scalars):
    """The export's own outputs for `texts` in one call, as JSON values."""
    specs = export.signatures[signature].structured_input_signature[1]
    inputs = {"text": texts, **scalars}
    tensors = {key: tf.constant(value, specs[key].dtype) for key, value in inputs.items()}
    out = export.signatures[signature](**tensors)
    return {key: _json(value.numpy().tolist()) for key, value in out.items()}


def _json(value):
    if isinstance(value, list):
        return [_json(item) for item in value]
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _same(got, expected):
    """Equal, with float scores to float32 rounding: a batch's matrix products round by its
    number of rows (the project's batch-invariance tests allow the same 1e-5)."""
    if isinstance(expected, dict):
        return (
            isinstance(got, dict)
            and got.keys() == expected.keys()
            and all(_same(got[key], expected[key]) for key in expected)
        )
    if isinstance(expected, list):
        return (
            isinstance(got, list)
            and len(got) == len(expected)
            and all(_same(g, e) for g, e in zip(got, expected))
        )
    if isinstance(expected, float):
        return isinstance(got, float) and got == pytest.approx(expected, rel=1e-5, abs=1e-6)
    return type(got) is type(expected) and got == expected


def _cases(export):
    """(path, body, expected answer) of a mix of requests, each computed alone."""
    cases = []
    for i in range(0, len(SENTENCES), 2):
        texts = SENTENCES[i : i + 3]
        alone = _alone(export, "serving_default", texts)["translation"]
        cases.append((":predict", {"instances": texts}, {"predictions": alone}))
        columns = {"text": texts, **OPTIONS}
        body = {"signature_name": "translate_options", "inputs": columns}
        cases.append(
            (":predict", body, {"outputs": _alone(export, "translate_options", texts, **OPTIONS)})
        )
        nbest = _alone(export, "translate_nbest", texts)
        rows = [
            {"scores": s, "translations": t} for s, t in zip(nbest["scores"], nbest["translations"])
        ]
        body = {"signature_name": "translate_nbest", "instances": [{"text": t} for t in texts]}
        cases.append((":predict", body, {"predictions": rows}))
        options = _alone(export, "translate_options", texts, beam_size=2, alpha=0.0, n_best=1)
        expected = [
            {
                "source": text,
                "hypotheses": [
                    {"text": t, "score": 0.0 if not text.strip() else s}
                    for t, s in zip(row_texts, row_scores)
                ],
            }
            for text, row_texts, row_scores in zip(
                texts, options["translations"], options["scores"]
            )
        ]
        body = {"text": texts, "beam_size": 2, "alpha": 0, "n_best": 1}
        cases.append(("/v1/translate", body, {"translations": expected}))
        cases.append(_constrained_case(export, texts))
        sampling = {"temperature": 1.0, "top_k": 0, "top_p": 0.9, "seed": i}
        sampled = _alone(export, "translate_sample", texts, **sampling)["translations"]
        body = {"signature_name": "translate_sample", "inputs": {"text": texts, **sampling}}
        cases.append((":predict", body, {"outputs": sampled}))
    return cases


def _constrained_case(export, texts):
    """/v1/translate with a constraint: the export's translate_constrained, the unset ones off
    and alpha the server's default (0.6)."""
    settings = {"beam_size": 3, "n_best": 2, "min_length": 3}
    constraints = {"no_repeat_ngram_size": 0, "prefix": ["two"] * len(texts)}
    alone = _alone(export, "translate_constrained", texts, alpha=0.6, **settings, **constraints)
    expected = [
        {
            "source": text,
            "hypotheses": [
                {"text": t, "score": 0.0 if not text.strip() else score}
                for t, score in zip(row_texts, row_scores)
            ],
        }
        for text, row_texts, row_scores in zip(texts, alone["translations"], alone["scores"])
    ]
    body = {"text": texts, **settings, "prefix": "two"}
    return "/v1/translate", body, {"translations": expected}


def test_concurrent_requests_get_what_each_gets_alone(server, export):
    url, service = server
    batches = []
    run_batch = service.batcher.run_batch

    def recording(key, values):
        batches.append(len(values))
        return run_batch(key, values)

    service.batcher.run_batch = recording
    cases = _cases(export) * 4

    def send(case):
        path, body, _ = case
        target = f"{url}/v1/models/tiny{path}" if path.startswith(":") else url + path
        return request(target, body)

    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(send, cases))
    finally:
        service.batcher.run_batch = run_batch
    for (status, answer), (_, _, expected) in zip(answers, cases, strict=True):
        assert status == 200 and _same(answer, expected), (answer, expected)
    assert max(batches) > 3  # rows of different requests shared calls (a request has 3)


def test_status_and_metadata_are_tensorflow_serving_s(server, export):
    url, _ = server
    assert request(f"{url}/v1/models/tiny") == (
        200,
        {
            "model_version_status": [
                {
                    "version": "1",
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        },
    )
    status, metadata = request(f"{url}/v1/models/tiny/versions/1/metadata")
    assert status == 200 and metadata["model_spec"]["name"] == "tiny"
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == set(export.signatures)
    options = signatures["translate_options"]
    assert options["inputs"]["beam_size"]["dtype"] == "DT_INT32"
    assert options["inputs"]["text"]["tensor_shape"] == {"dim": [{"size": "-1"}]}
    assert set(options["outputs"]) == {"translations", "scores"}


def test_a_columnar_request_with_one_input_and_an_empty_one(server, export):
    url, _ = server
    alone = _alone(export, "serving_default", ["zwei", "acht"])["translation"]
    assert request(f"{url}/v1/models/tiny:predict", {"inputs": ["zwei", "acht"]}) == (
        200,
        {"outputs": alone},
    )
    assert request(f"{url}/v1/models/tiny:predict", {"instances": []}) == (200, {"predictions": []})
    status, answer = request(url + "/v1/translate", {"text": []})
    assert (status, answer) == (200, {"translations": []})


def test_an_over_long_sentence_is_truncated_as_the_export_does(server, export, tiny_run):
    url, _ = server
    sentence = " ".join(["neunhundertneunundneunzig"] * 150)
    pieces = spm.SentencePieceProcessor(
        model_file=str(RunFolder(tiny_run[0]).tokenizer_model("source"))
    )
    assert len(pieces.encode(sentence)) > tiny_run[2].decode.max_input_length  # it is cut
    alone = _alone(export, "serving_default", [sentence])["translation"]
    assert request(f"{url}/v1/models/tiny:predict", {"instances": [sentence]}) == (
        200,
        {"predictions": alone},
    )


BAD = [
    (":predict", b'{"instances": ["zwei"', 400, "malformed JSON"),
    (":predict", b'{"instances": ["\xff\xfe"]}', 400, "not valid UTF-8 (byte 0xff at offset 16)"),
    (":predict", [1, 2], 400, "must be a JSON object"),
    (":predict", {"instances": "zwei"}, 400, "instances: expected a list, got a string"),
    (
        ":predict",
        {"instances": [3]},
        400,
        "instances[0]['text']: expected a string, got the number 3",
    ),
    (":predict", {"signature_name": "nope", "instances": []}, 400, "signature_name 'nope'"),
    (":predict", {"instances": [{"txt": "zwei"}]}, 400, "unknown input 'txt'"),
    (":predict", {"instances": [], "inputs": {}}, 400, 'exactly one of "instances"'),
    (":predict", {"instances": [], "signature": "x"}, 400, "unknown field 'signature'"),
    (":predict", {"signature_name": "translate_options", "instances": ["a"]}, 400, "scalar inputs"),
    (
        ":predict",
        {
            "signature_name": "translate_options",
            "inputs": {"text": ["a"], "beam_size": 2, "alpha": 0.6},
        },
        400,
        "missing input 'n_best'",
    ),
    (
        ":predict",
        {
            "signature_name": "translate_options",
            "inputs": {**OPTIONS, "text": ["a"], "beam_size": "3"},
        },
        400,
        "inputs['beam_size']: expected an integer (int32), got a string",
    ),
    (
        ":predict",
        {"signature_name": "translate_options", "inputs": {**OPTIONS, "text": ["a"], "n_best": 4}},
        400,
        "inputs['n_best']=4: must be at most inputs['beam_size']=3",
    ),
    (
        ":predict",
        {
            "signature_name": "translate_options",
            "inputs": {**OPTIONS, "text": ["a"], "beam_size": 99},
        },
        400,
        "at most 8 (--max-beam-size)",
    ),
    (":predict", {"instances": ["a"] * 9}, 413, "9 sentences, over the 8 a request allowed"),
    (":predict", {"instances": ["x" * 5000]}, 413, "over 4096 bytes (--max-body-bytes)"),
    ("/v1/translate", {"text": "zwei"}, 400, "text: expected a list of strings, got a string"),
    ("/v1/translate", {"text": ["zwei", 2]}, 400, "text[1]: expected a string, got the number 2"),
    ("/v1/translate", {"text": ["\ud800"]}, 400, "text[0]: not valid Unicode"),
    ("/v1/translate", {"text": ["a"], "beam_size": 0}, 400, "beam_size=0: must be at least 1"),
    ("/v1/translate", {"text": ["a"], "beam_size": True}, 400, "beam_size: expected an integer"),
    ("/v1/translate", {"text": ["a"], "alpha": 1}, 400, "alpha has no effect with greedy search"),
    ("/v1/translate", {"text": ["a"], "beams": 2}, 400, "unknown field 'beams'"),
    ("/v1/translate", {"text": ["a"], "min_length": -1}, 400, "min_length=-1: must be at least 0"),
    ("/v1/translate", {"text": ["a"], "prefix": 3}, 400, "prefix: expected a string"),
    (
        ":predict",
        {
            "signature_name": "translate_sample",
            "inputs": {"text": ["a"], "temperature": -1, "top_k": 0, "top_p": 1, "seed": 0},
        },
        400,
        "inputs['temperature']=-1.0: must be at least 0",
    ),
    ("/v1/translate", {"beam_size": 2}, 400, 'missing field "text"'),
    ("/v1/translate", {"text": ["a"] * 9}, 413, "(--max-sentences)"),
    ("/v1/models/other", None, 404, "model 'other' not found (this server serves 'tiny')"),
    ("/v1/models/tiny/versions/2", None, 404, "no version 2"),
    ("/nowhere", None, 404, "GET /nowhere: Not Found"),
    ("/v1/translate", None, 405, "Method Not Allowed"),
]


@pytest.mark.parametrize(("path", "body", "status", "message"), BAD, ids=[b[3][:40] for b in BAD])
def test_a_bad_request_gets_a_one_line_json_error_and_the_server_goes_on(
    server, path, body, status, message
):
    url, _ = server
    target = f"{url}/v1/models/tiny{path}" if path.startswith(":") else url + path
    got_status, answer = request(target, body)
    assert (got_status, list(answer)) == (status, ["error"]), answer
    assert message in answer["error"] and "\n" not in answer["error"]
    assert request(f"{url}/v1/models/tiny:predict", {"instances": ["zwei"]})[0] == 200


def test_nan_scores_would_be_written_as_tensorflow_serving_writes_them():
    from seq2seq.inference.server import JSONAnswer

    body = JSONAnswer({"scores": [float("nan"), float("-inf"), np.float32(-1.5).item()]}).body
    assert body == b'{"scores":[NaN,-Infinity,-1.5]}'
    assert json.loads(body)["scores"][2] == -1.5


def test_translate_gives_the_attention_of_the_best_translation_without_padding(server, export):
    url, _ = server
    texts = ["siebenhundertelf", "zwei", " "]
    status, answer = request(url + "/v1/translate", {"text": texts, "attention": True})
    assert status == 200
    best = _alone(export, "translate_nbest", texts)["translations"]
    pairs = {"text": tf.constant(texts), "translation": tf.constant([row[0] for row in best])}
    alone = {k: v.numpy() for k, v in export.signatures["attention"](**pairs).items()}
    for i, entry in enumerate(answer["translations"]):
        source, target = alone["source_lengths"][i], alone["target_lengths"][i]
        assert entry["attention"] == {
            "source_pieces": [p.decode() for p in alone["source_pieces"][i, :source]],
            "target_pieces": [p.decode() for p in alone["target_pieces"][i, :target]],
            "weights": alone["attention"][i, :target, :source].tolist(),
        }
    assert len(answer["translations"][0]["attention"]["source_pieces"]) > 1
    assert answer["translations"][2]["attention"]["source_pieces"] == []  # blank: no pieces


def test_signatures_with_padded_outputs_run_a_request_whole(server, export):
    url, _ = server
    inputs = {"text": ["siebenhundertelf", "zwei"], "translation": ["seven hundred", "two"]}
    for name in ("attention", "score"):
        body = {"signature_name": name, "inputs": inputs}
        tensors = {key: tf.constant(value) for key, value in inputs.items()}
        out = export.signatures[name](**tensors)
        expected = {key: _json(value.numpy().tolist()) for key, value in out.items()}
        assert request(f"{url}/v1/models/tiny:predict", body) == (200, {"outputs": expected})
    status, answer = request(url + "/v1/translate", {"text": ["zwei"], "alignments": True})
    if "align" not in export.signatures:
        assert (status, answer) == (
            400,
            {"error": "the model has no 'align' signature (re-export it)"},
        )
