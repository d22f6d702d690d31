"""File names and download URLs of Multi30k task 1 (no TensorFlow import: the script uses it)."""

LANGUAGES = ("cs", "de", "en", "fr")
BASE_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw"
# Our split name -> file stem in the Multi30k repository.
SPLIT_STEMS = {"train": "train", "validation": "val", "test": "test_2016_flickr"}


def file_name(split: str, language: str) -> str:
    """Returns the gzip file name of one split and language, e.g. ``val.de.gz``.

    Args:
        split: One of ``train``, ``validation``, ``test``.
        language: One of `LANGUAGES`.
    """
    return f"{SPLIT_STEMS[split]}.{language}.gz"


def url(name: str) -> str:
    """Returns the download URL of a file name from `file_name`."""
    return f"{BASE_URL}/{name}"


def file_names(languages) -> list[str]:
    """Returns the file names of every split for each of ``languages``.

    Raises:
        ValueError: A language is not one of `LANGUAGES`.
    """
    check_languages(languages)
    return [file_name(split, lang) for lang in languages for split in SPLIT_STEMS]


def check_languages(languages) -> None:
    """Raises ValueError naming the offenders if any language is not a Multi30k language."""
    unknown = [lang for lang in languages if lang not in LANGUAGES]
    if unknown:
        raise ValueError(f"multi30k: unknown language(s) {unknown}; choose from {list(LANGUAGES)}")
