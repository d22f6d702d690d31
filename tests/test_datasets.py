"""Data sources of seq2seq.data: numbers, multi30k, text, tfds. Offline and fast."""

import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from num2words import num2words

from seq2seq.data import catalog, multi30k, multi30k_files, network, numbers
from seq2seq.data import sources as data

REPO = Path(__file__).resolve().parents[1]
MULTI30K_DIR = Path(__file__).resolve().parents[2] / "shared/data/multi30k"
NUMBER_OPTIONS = dict(
    train_size=40, validation_size=7, test_size=9, min_number=0, max_number=999_999, seed=3
)

needs_multi30k = pytest.mark.skipif(
    not (MULTI30K_DIR / "train.en.gz").exists(),
    reason=f"Multi30k raw files not found in {MULTI30K_DIR} (shared read-only data copy)",
)


def offline(hosts, timeout=3.0):
    return False


def pairs(dataset) -> list[tuple[str, str]]:
    return [
        (example["source"].decode(), example["target"].decode())
        for example in dataset.as_numpy_iterator()
    ]


def first_line(path: Path) -> str:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.readline().removesuffix("\n")


# === registry ===


def test_unknown_source_lists_choices(tmp_path):
    message = r"data.source='nope' is unknown; choose one of \['multi30k'"
    with pytest.raises(ValueError, match=message):
        data.load_splits("nope", data_dir=str(tmp_path))


def test_numbers_sizes_and_groups(tmp_path):
    splits = data.load_splits("numbers", data_dir=str(tmp_path), **NUMBER_OPTIONS)
    assert set(splits) == set(data.SPLITS)
    got = {split: pairs(dataset) for split, dataset in splits.items()}
    assert [len(got[s]) for s in data.SPLITS] == [40, 7, 9]
    example = next(splits["test"].as_numpy_iterator())
    assert example["group"].decode() in {f"{d} digit{'s' if d > 1 else ''}" for d in range(1, 7)}


def test_numbers_every_digit_count_is_equally_likely():
    config = numbers.make_config(**{**NUMBER_OPTIONS, "train_size": 60_000, "test_size": 6_000})
    for values in numbers.draw_numbers(config).values():
        counts = np.bincount([len(str(v)) for v in values], minlength=7)[1:]
        assert (abs(counts - len(values) / 6) < 0.15 * len(values) / 6 + 10).all(), counts
    train = numbers.draw_numbers(config)["train"]
    assert len(set(train[train < 10].tolist())) == 10  # every one-digit number is in training
    assert train.min() >= 0 and train.max() <= 999_999


def test_numbers_groups_are_digit_counts():
    groups = numbers.digit_group(tf.constant([0, 7, 10, 345, 999_999], tf.int64)).numpy()
    assert [g.decode() for g in groups] == [
        "1 digit",
        "1 digit",
        "2 digits",
        "3 digits",
        "6 digits",
    ]


def test_tfds_builder_numbers_needs_no_config(tmp_path):
    builder = tfds.builder("numbers", data_dir=str(tmp_path))  # registered by seq2seq.data
    assert builder.builder_config.train_size == 20_000
    assert builder.builder_config.max_number == 999_999


def _dataset_ops(dataset):
    """The op names of a dataset's graph, inside its functions too."""
    serialized = tf.raw_ops.DatasetToGraphV2(input_dataset=dataset._variant_tensor)
    graph = tf.compat.v1.GraphDef.FromString(serialized.numpy())
    nodes = [*graph.node, *(n for f in graph.library.function for n in f.node_def)]
    return {node.op for node in nodes}


def test_prepared_splits_are_streamed_not_cached_in_memory(tmp_path):
    """TFDS caches a small enough split in memory unless told not to (a 1M-pair set cost 640
    MiB): the graph of every split reads the files, with no cache in it."""
    splits = data.load_splits("numbers", data_dir=str(tmp_path), **NUMBER_OPTIONS)
    for split in data.SPLITS:
        ops = _dataset_ops(splits[split])
        assert any(op.startswith("TFRecordDataset") for op in ops), ops
        assert not any(op.startswith("CacheDataset") for op in ops), (split, ops)


def test_numbers_deterministic_across_data_dirs(tmp_path):
    first = data.load_splits("numbers", data_dir=str(tmp_path / "a"), **NUMBER_OPTIONS)
    second = data.load_splits("numbers", data_dir=str(tmp_path / "b"), **NUMBER_OPTIONS)
    for split in data.SPLITS:
        assert pairs(first[split]) == pairs(second[split])


def test_numbers_german_source_english_target(tmp_path):
    config = numbers.make_config(**NUMBER_OPTIONS)
    expected = numbers.draw_numbers(config)["validation"].tolist()
    got = pairs(data.load_splits("numbers", data_dir=str(tmp_path), **NUMBER_OPTIONS)["validation"])
    assert got == [(num2words(n, lang="de"), num2words(n)) for n in expected]
    assert num2words(345, lang="de") == "dreihundertfünfundvierzig"


def test_numbers_config_name_encodes_every_option(tmp_path):
    names = {numbers.make_config(**NUMBER_OPTIONS).name}
    for key in NUMBER_OPTIONS:
        names.add(numbers.make_config(**{**NUMBER_OPTIONS, key: NUMBER_OPTIONS[key] + 1}).name)
    assert len(names) == 1 + len(NUMBER_OPTIONS)
    data.load_splits("numbers", data_dir=str(tmp_path), **NUMBER_OPTIONS)
    data.load_splits("numbers", data_dir=str(tmp_path), **{**NUMBER_OPTIONS, "seed": 4})
    assert len(list((tmp_path / "numbers").glob("*seed*"))) == 2


def test_numbers_empty_range_is_refused():
    with pytest.raises(ValueError, match=r"\[50, 10\] is not a range"):
        numbers.make_config(**{**NUMBER_OPTIONS, "min_number": 50, "max_number": 10})


# === multi30k ===


@pytest.fixture(scope="module")
def multi30k_data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("multi30k_tfds"))


def load_multi30k(data_dir, source, target, manual_dir=str(MULTI30K_DIR)):
    return data.load_splits(
        "multi30k",
        data_dir=data_dir,
        source_language=source,
        target_language=target,
        manual_dir=manual_dir,
    )


@needs_multi30k
def test_multi30k_en_de_sizes_and_first_pair(multi30k_data_dir):
    splits = load_multi30k(multi30k_data_dir, "en", "de")
    sizes = {split: int(dataset.cardinality()) for split, dataset in splits.items()}
    assert sizes == {"train": 29000, "validation": 1014, "test": 1000}
    assert pairs(splits["train"].take(1)) == [
        (first_line(MULTI30K_DIR / "train.en.gz"), first_line(MULTI30K_DIR / "train.de.gz"))
    ]
    test_pair = pairs(splits["test"].take(1))[0]
    assert test_pair[1] == first_line(MULTI30K_DIR / "test_2016_flickr.de.gz")


@needs_multi30k
def test_multi30k_reverse_direction_swaps(multi30k_data_dir):
    forward = pairs(load_multi30k(multi30k_data_dir, "en", "de")["validation"].take(3))
    backward = pairs(load_multi30k(multi30k_data_dir, "de", "en")["validation"].take(3))
    assert backward == [(target, source) for source, target in forward]


@needs_multi30k
def test_multi30k_en_fr(multi30k_data_dir):
    splits = load_multi30k(multi30k_data_dir, "en", "fr")
    assert int(splits["validation"].cardinality()) == 1014
    assert pairs(splits["validation"].take(1)) == [
        (first_line(MULTI30K_DIR / "val.en.gz"), first_line(MULTI30K_DIR / "val.fr.gz"))
    ]


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [("en", "es", r"unknown language\(s\) \['es'\]"), ("de", "fr", "one language must be 'en'")],
)
def test_multi30k_invalid_languages(tmp_path, source, target, message):
    with pytest.raises(ValueError, match=message):
        load_multi30k(str(tmp_path), source, target)


def test_multi30k_missing_file_is_named(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for split in ("train", "validation", "test"):
        for lang in ("en", "de"):
            if (split, lang) != ("validation", "de"):
                write_gz(raw / multi30k_files.file_name(split, lang), "a\n")
    with pytest.raises(FileNotFoundError, match=r"val\.de\.gz"):
        load_multi30k(str(tmp_path / "tfds"), "en", "de", manual_dir=str(raw))


def test_multi30k_line_count_mismatch_names_both_files(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for split in ("train", "validation", "test"):
        write_gz(raw / multi30k_files.file_name(split, "en"), "a\nb\n")
        write_gz(raw / multi30k_files.file_name(split, "fr"), "a\nb\nc\n")
    with pytest.raises(ValueError, match=r"en\.gz has 2 lines but .*fr\.gz has 3"):
        load_multi30k(str(tmp_path / "tfds"), "fr", "en", manual_dir=str(raw))


@needs_multi30k
def test_multi30k_is_a_tfds_builder_with_a_manual_folder(tmp_path):
    builder = tfds.builder("multi30k/de-en", data_dir=str(tmp_path))
    assert "manual" in builder.MANUAL_DOWNLOAD_INSTRUCTIONS
    config = tfds.download.DownloadConfig(manual_dir=str(MULTI30K_DIR), try_download_gcs=False)
    builder.download_and_prepare(download_config=config)
    assert builder.info.splits["validation"].num_examples == 1014


def test_multi30k_download_urls():
    names = multi30k_files.file_names(["en", "de"])
    assert "test_2016_flickr.de.gz" in names and "val.en.gz" in names and len(names) == 6
    assert multi30k_files.url("train.de.gz") == (
        "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/train.de.gz"
    )
    assert multi30k.config_name("en", "de") == multi30k.config_name("de", "en") == "de-en"


def test_multi30k_offline_without_manual_dir_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setattr(network, "internet_reachable", offline)
    with pytest.raises(ConnectionError, match="raw.githubusercontent.com is unreachable"):
        load_multi30k(str(tmp_path), "en", "de", manual_dir=None)


class FakeDownloadManager:
    """Stands in for tfds.download.DownloadManager: serves the shared files, records the URLs."""

    def __init__(self):
        self.urls = {}

    def download(self, urls):
        self.urls.update(urls)
        return {name: MULTI30K_DIR / name for name in urls}

    @property
    def manual_dir(self):
        raise AssertionError("Manual directory does not exist or is empty")  # as TFDS says it


@needs_multi30k
def test_multi30k_download_path_uses_the_file_urls(tmp_path):
    builder = multi30k.Multi30k(data_dir=str(tmp_path), config="en-fr")
    manager = FakeDownloadManager()
    generators = builder._split_generators(manager)
    expected = multi30k_files.file_names(["en", "fr"])
    assert manager.urls == {name: multi30k_files.url(name) for name in expected}
    _, example = next(iter(generators["validation"]))
    assert example == {
        "en": first_line(MULTI30K_DIR / "val.en.gz"),
        "fr": first_line(MULTI30K_DIR / "val.fr.gz"),
    }


# === text ===


def write_gz(path: Path, content: str | bytes) -> None:
    raw = content.encode() if isinstance(content, str) else content
    with gzip.open(path, "wb") as f:
        f.write(raw)


def write_corpus(folder: Path, source: bytes, target: bytes, *, gz: bool = False) -> dict:
    """Writes the same source/target pair as train, validation and test files."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev", "test"):
        (folder / f"{split}.de").write_bytes(source)
        if gz:
            write_gz(folder / f"{split}.en.gz", target)
        else:
            (folder / f"{split}.en").write_bytes(target)
    return dict(
        train_prefix=str(folder / "train"),
        validation_prefix=str(folder / "dev"),
        test_prefix=str(folder / "test"),
        source_language="de",
        target_language="en",
    )


def load_text(tmp_path, options):
    return data.load_splits("text", data_dir=str(tmp_path / "tfds"), **options)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_text_plain_and_gzip(tmp_path, gz):
    options = write_corpus(tmp_path / "raw", b"Hallo Welt\nTschau\n", b"hello world\nbye\n", gz=gz)
    splits = load_text(tmp_path, options)
    expected = [("Hallo Welt", "hello world"), ("Tschau", "bye")]
    assert {split: pairs(dataset) for split, dataset in splits.items()} == {
        split: expected for split in data.SPLITS
    }


def test_text_bom_crlf_stripped_and_empty_lines_kept(tmp_path):
    source = b"\xef\xbb\xbfEins\r\n\r\n  \r\nVier \xc3\xa4\r\n"
    options = write_corpus(tmp_path / "raw", source, b"one\n\nthree\nfour\n")
    got = pairs(load_text(tmp_path, options)["train"])
    assert got == [("Eins", "one"), ("", ""), ("  ", "three"), ("Vier ä", "four")]


def test_text_no_final_newline_and_form_feed_stay_aligned(tmp_path):
    options = write_corpus(tmp_path / "raw", b"a\x0cb\nc", b"x\ny")
    assert pairs(load_text(tmp_path, options)["test"]) == [("a\x0cb", "x"), ("c", "y")]


def test_text_line_count_mismatch_names_files_and_counts(tmp_path):
    options = write_corpus(tmp_path / "raw", b"a\nb\nc\n", b"x\ny\n")
    with pytest.raises(ValueError, match=r"train\.de has 3 lines but .*train\.en has 2"):
        load_text(tmp_path, options)


def test_text_invalid_utf8_names_file_and_line(tmp_path):
    options = write_corpus(tmp_path / "raw", b"ok\nok\n", b"fine\nbad \xff\n")
    with pytest.raises(ValueError, match=r"train\.en, line 2: invalid UTF-8"):
        load_text(tmp_path, options)


def test_text_nul_byte_names_file_and_line(tmp_path):
    options = write_corpus(tmp_path / "raw", b"ok\n\x00\x01\n", b"a\nb\n")
    with pytest.raises(ValueError, match=r"train\.de, line 2: contains a NUL byte"):
        load_text(tmp_path, options)


def test_text_empty_file_is_named(tmp_path):
    options = write_corpus(tmp_path / "raw", b"", b"")
    with pytest.raises(ValueError, match=r"train\.de is empty"):
        load_text(tmp_path, options)


def test_text_missing_file_names_paths_tried(tmp_path):
    options = write_corpus(tmp_path / "raw", b"a\n", b"b\n")
    os.remove(tmp_path / "raw" / "test.en")
    with pytest.raises(FileNotFoundError, match=r"test\.en and .*test\.en\.gz"):
        load_text(tmp_path, options)


def test_text_reprepared_after_edit(tmp_path):
    options = write_corpus(tmp_path / "raw", b"alt\n", b"old\n")
    assert pairs(load_text(tmp_path, options)["train"]) == [("alt", "old")]
    assert pairs(load_text(tmp_path, options)["train"]) == [("alt", "old")]  # reused
    (tmp_path / "raw" / "train.en").write_bytes(b"new!\n")
    assert pairs(load_text(tmp_path, options)["train"]) == [("alt", "new!")]
    assert len(list((tmp_path / "tfds" / "parallel_text").iterdir())) == 2


# === tfds catalog ===


def test_tfds_unprepared_offline_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setattr(network, "internet_reachable", offline)
    start = time.monotonic()
    with pytest.raises(ConnectionError) as info:
        data.load_splits("tfds", data_dir=str(tmp_path), name="wmt14_translate/de-en")
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert "\n" not in message
    assert "tfds dataset 'wmt14_translate/de-en' is not prepared in" in message
    assert "internet is unreachable" in message and "data.data_dir" in message


def test_tfds_unknown_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(network, "internet_reachable", offline)
    with pytest.raises(ValueError, match="unknown tfds dataset 'no_such_dataset_xyz'"):
        data.load_splits("tfds", data_dir=str(tmp_path), name="no_such_dataset_xyz")


@needs_multi30k
def test_tfds_reads_prepared_dataset_by_name(multi30k_data_dir, monkeypatch):
    monkeypatch.setattr(network, "internet_reachable", offline)
    load_multi30k(multi30k_data_dir, "de", "en")  # prepares multi30k/de-en if needed
    splits = data.load_splits(
        "tfds", data_dir=multi30k_data_dir, name="multi30k/de-en", source_language="en"
    )
    assert pairs(splits["train"].take(1)) == [
        (first_line(MULTI30K_DIR / "train.en.gz"), first_line(MULTI30K_DIR / "train.de.gz"))
    ]
    assert int(splits["validation"].cardinality()) == 1014


def test_tfds_split_names_and_direction():
    assert catalog._split_names("x", {"train", "dev", "test"}, None)["validation"] == "dev"
    mapping = catalog._split_names(
        "x", {"train", "newstest2013"}, {"validation": "newstest2013", "test": "newstest2013[:10]"}
    )
    assert mapping == {"train": "train", "validation": "newstest2013", "test": "newstest2013[:10]"}
    with pytest.raises(ValueError, match="has no test split"):
        catalog._split_names("x", {"train", "validation"}, None)
    assert catalog._direction("x", ("de", "en"), None, None) == ("de", "en")
    assert catalog._direction("x", ("de", "en"), None, "de") == ("en", "de")
    assert catalog._direction("x", ("de", "en"), "en", None) == ("en", "de")
    with pytest.raises(ValueError, match="no language 'fr'"):
        catalog._direction("x", ("de", "en"), "fr", None)


# === scripts ===


def test_download_script_help():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts/download_multi30k.py"), "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert "--out" in result.stdout and "--languages" in result.stdout
