"""Any translation dataset of the TFDS catalog, e.g. ``wmt14_translate/de-en``.

The dataset's ``supervised_keys`` name its two languages; ``source_language`` and
``target_language`` pick the direction (default: the order of ``supervised_keys``). A dataset that
is not prepared under ``data_dir`` is downloaded and prepared, but only after a quick check that
its download hosts are reachable: offline, TFDS would otherwise retry every URL for minutes.
"""

import urllib.parse

import tensorflow as tf
import tensorflow_datasets as tfds

from seq2seq.data import network, prepared

# Our split name -> split names tried in order when no explicit mapping is given.
DEFAULT_SPLIT_NAMES = {
    "train": ("train",),
    "validation": ("validation", "dev", "valid", "val"),
    "test": ("test",),
}
FALLBACK_HOST = "www.google.com"


def _download_hosts(builder: tfds.core.DatasetBuilder) -> list[str]:
    """Returns the hosts of the builder's registered download URLs, or a generic host."""
    try:
        urls = builder.url_infos or {}
    except Exception:  # A builder without a readable checksums file.
        urls = {}
    hosts = sorted({urllib.parse.urlparse(str(u)).hostname for u in urls} - {None})
    return hosts[:4] or [FALLBACK_HOST]


def _ensure_prepared(builder: tfds.core.DatasetBuilder, name: str, data_dir: str) -> None:
    """Prepares the dataset, failing at once with a one-line error if it cannot be downloaded."""
    if builder.is_prepared():
        return
    hosts = _download_hosts(builder)
    if not network.internet_reachable(hosts):
        raise ConnectionError(
            f"tfds dataset '{name}' is not prepared in {data_dir} and the internet is unreachable"
            f' ({", ".join(hosts)}): prepare it on a connected machine (python -c "import'
            f" tensorflow_datasets as tfds; tfds.builder('{name}', data_dir=DIR)"
            '.download_and_prepare()") and copy DIR over, or point data.data_dir at a prepared copy'
        )
    prepared.prepare(builder)


def _direction(name: str, keys, source_language, target_language) -> tuple[str, str]:
    """Returns the (source, target) feature keys from supervised_keys and the wanted direction."""
    if not (
        isinstance(keys, tuple | list) and len(keys) == 2 and all(isinstance(k, str) for k in keys)
    ):
        raise ValueError(f"tfds dataset '{name}' has no (source, target) supervised_keys: {keys}")

    for language in (source_language, target_language):
        if language and language not in keys:
            raise ValueError(
                f"tfds dataset '{name}' translates between {list(keys)}; no language '{language}'"
            )
    if source_language and source_language == target_language:
        raise ValueError(f"tfds dataset '{name}': source and target are both '{source_language}'")
    reverse = source_language == keys[1] or target_language == keys[0]
    return (keys[1], keys[0]) if reverse else (keys[0], keys[1])


def _split_names(name: str, available, splits: dict[str, str] | None) -> dict[str, str]:
    """Maps train/validation/test to the dataset's split names (explicit ``splits`` first)."""
    mapping = {}
    for ours, candidates in DEFAULT_SPLIT_NAMES.items():
        wanted = (splits or {}).get(ours)
        options = (wanted,) if wanted else candidates
        found = [option for option in options if option.split("[")[0] in available]
        if not found:
            raise ValueError(
                f"tfds dataset '{name}' has no {ours} split (tried {list(options)}; it has"
                f" {sorted(available)}): set the 'splits' option, e.g. {{'{ours}': 'NAME'}}"
            )
        mapping[ours] = found[0]
    return mapping


def load(
    *,
    data_dir: str,
    name: str,
    source_language: str | None = None,
    target_language: str | None = None,
    splits: dict[str, str] | None = None,
) -> dict[str, tf.data.Dataset]:
    """Prepares (if needed and online) and reads a catalog translation dataset.

    Args:
        data_dir: TFDS data directory.
        name: Catalog name with optional config, e.g. ``wmt14_translate/de-en``.
        source_language: Source feature key; ``None`` takes ``supervised_keys[0]``, or the other
            key when only ``target_language`` is given.
        target_language: Target feature key; ``None`` takes the remaining key.
        splits: Optional map of train/validation/test to the dataset's split names or slices
            (e.g. ``{"validation": "validation[:1000]"}``); by default validation is the first
            of validation/dev/valid/val that exists.

    Returns:
        ``{"train", "validation", "test"}`` -> datasets of ``{"source", "target"}`` strings.

    Raises:
        ValueError: Unknown dataset, no usable supervised_keys, language or split not found.
        ConnectionError: Not prepared and its download hosts are unreachable.
    """
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        first_line = str(error).strip().splitlines()[0]
        raise ValueError(f"unknown tfds dataset '{name}': {first_line}") from None
    _ensure_prepared(builder, name, data_dir)
    source, target = _direction(
        name, builder.info.supervised_keys, source_language, target_language
    )
    mapping = _split_names(name, builder.info.splits.keys(), splits)
    return prepared.read_pairs(builder, mapping, source_key=source, target_key=target)
