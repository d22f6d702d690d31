"""Multi30k task 1 (Elliott et al. 2016): English image descriptions with de/fr/cs translations.

Splits: ``train`` (29,000 pairs), ``validation`` (``val``, 1,014) and ``test``
(``test_2016_flickr``, 1,000). The files are read from TFDS's manual download folder when it
holds them (``tfds.download.DownloadConfig(manual_dir=...)``, ``data.manual_dir``: e.g. a shared
read-only copy), else downloaded from the Multi30k GitHub repository by the TFDS download manager.
Lines are split as `seq2seq.lines` says; the text is otherwise kept as is.
"""

import os
import urllib.parse

import tensorflow as tf
import tensorflow_datasets as tfds

from seq2seq import lines
from seq2seq.data import network, prepared
from seq2seq.data.multi30k_files import (
    BASE_URL,
    LANGUAGES,
    SPLIT_STEMS,
    check_languages,
    file_name,
    url,
)

# One config per language pair; languages in sorted order, the direction is applied on reading.
PAIRS = (("cs", "en"), ("de", "en"), ("en", "fr"))


class Multi30k(tfds.core.GeneratorBasedBuilder):
    """TFDS builder of Multi30k task 1; configs ``cs-en``, ``de-en`` and ``en-fr``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name="-".join(pair), description=f"Multi30k {'-'.join(pair)}")
        for pair in PAIRS
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Optional: put {train,val,test_2016_flickr}.{lang}.gz (or the same names without .gz) of
    both languages from https://github.com/multi30k/dataset/tree/master/data/task1/raw in the
    manual folder (`scripts/download_multi30k.py --out DIR` fetches them); without them, the
    files are downloaded.
    """

    @property
    def languages(self) -> tuple[str, str]:
        """The two languages of this config, sorted."""
        first, second = self.builder_config.name.split("-")
        return first, second

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.Translation(languages=self.languages),
            supervised_keys=self.languages,
            homepage="https://github.com/multi30k/dataset",
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        manual = _manual_folder(dl_manager)
        paths = self._local_paths(manual) if manual else self._download(dl_manager)
        return {split: self._generate_examples(paths[split]) for split in SPLIT_STEMS}

    def _local_paths(self, folder) -> dict[str, dict[str, str]]:
        paths = {}
        for split, stem in SPLIT_STEMS.items():
            try:
                prefix = os.path.join(folder, stem)
                paths[split] = {lang: lines.resolve(prefix, lang) for lang in self.languages}
            except FileNotFoundError as error:
                raise FileNotFoundError(f"multi30k (manual_dir={folder}): {error}") from None
        return paths

    def _download(self, dl_manager) -> dict[str, dict[str, str]]:
        names = {
            (split, lang): file_name(split, lang)
            for split in SPLIT_STEMS
            for lang in self.languages
        }
        files = dl_manager.download({name: url(name) for name in names.values()})
        paths = {split: {} for split in SPLIT_STEMS}
        for (split, lang), name in names.items():
            paths[split][lang] = os.fspath(files[name])
        return paths

    def _generate_examples(self, paths: dict[str, str]):
        first, second = self.languages
        pairs = lines.iter_pairs(paths[first], paths[second])
        for index, (text1, text2) in enumerate(pairs):
            yield index, {first: text1, second: text2}


def _manual_folder(dl_manager):
    """TFDS's manual folder if it holds anything, else None (the files are downloaded)."""
    try:
        return os.fspath(dl_manager.manual_dir)
    except AssertionError:  # TFDS's way of saying that the folder is missing or empty
        return None


def config_name(source_language: str, target_language: str) -> str:
    """Returns the builder config of a translation direction, e.g. ``en``, ``de`` -> ``de-en``.

    Raises:
        ValueError: Unknown or equal languages, or neither of them is English.
    """
    check_languages([source_language, target_language])
    pair = tuple(sorted((source_language, target_language)))
    if pair not in PAIRS:
        raise ValueError(
            f"multi30k: unsupported pair {source_language}->{target_language}; one language must"
            f" be 'en' and the other one of {[lang for lang in LANGUAGES if lang != 'en']}"
        )
    return "-".join(pair)


def _check_online(data_dir: str) -> None:
    """Raises a one-line ConnectionError at once if the download host is unreachable."""
    host = urllib.parse.urlparse(BASE_URL).hostname
    if not network.internet_reachable([host]):
        raise ConnectionError(
            f"multi30k is not prepared in {data_dir} and {host} is unreachable: set"
            " data.manual_dir to a folder with the raw files (scripts/download_multi30k.py"
            " fetches them on a connected machine)"
        )


def load(
    *, data_dir: str, source_language: str, target_language: str, manual_dir: str | None
) -> dict[str, tf.data.Dataset]:
    """Prepares (first use only) and reads Multi30k in the requested direction.

    Args:
        data_dir: TFDS data directory.
        source_language: One of en/de/fr/cs.
        target_language: One of en/de/fr/cs; one of the two must be ``en``.
        manual_dir: Folder with the raw ``.gz`` files, or ``None`` to download them.

    Returns:
        ``{"train", "validation", "test"}`` -> datasets of ``{"source", "target"}`` strings.
    """
    config = config_name(source_language, target_language)
    if manual_dir and not os.path.isdir(manual_dir):
        raise FileNotFoundError(f"data.manual_dir={manual_dir}: no such folder")
    builder = Multi30k(data_dir=data_dir, config=config)
    if not (manual_dir or builder.is_prepared()):
        _check_online(data_dir)
    prepared.prepare(builder, manual_dir=manual_dir)
    splits = {split: split for split in SPLIT_STEMS}
    return prepared.read_pairs(
        builder, splits, source_key=source_language, target_key=target_language
    )
