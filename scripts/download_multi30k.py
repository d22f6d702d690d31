"""Download the raw Multi30k task 1 files, to use later as the multi30k source's manual_dir.

Example:
    python scripts/download_multi30k.py --out ~/data/multi30k --languages en de

then train with ``data=multi30k data.manual_dir=~/data/multi30k``. Without ``manual_dir`` the
multi30k source downloads the same files itself (through TFDS) on first use.
Run from a checkout with the package installed (``pip install -e .``).
"""

import argparse
import os
import shutil
import sys
import urllib.request

from seq2seq.data.multi30k_files import LANGUAGES, file_names, url


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write the .gz files to")
    parser.add_argument(
        "--languages",
        nargs="+",
        default=list(LANGUAGES),
        choices=LANGUAGES,
        help="languages to fetch (default: all)",
    )
    parser.add_argument("--force", action="store_true", help="download files that already exist")
    return parser.parse_args(argv)


def download(name: str, out_dir: str, *, force: bool, timeout: float = 60.0) -> str:
    """Downloads one file into ``out_dir`` (atomically) unless it is already there."""
    path = os.path.join(out_dir, name)
    if os.path.exists(path) and not force:
        print(f"exists   {path}")
        return path
    partial = path + ".part"
    with urllib.request.urlopen(url(name), timeout=timeout) as response, open(partial, "wb") as f:
        shutil.copyfileobj(response, f)
    os.replace(partial, path)
    print(f"fetched  {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    """Downloads train/val/test_2016_flickr for each requested language."""
    args = parse_args(argv)
    out_dir = os.path.abspath(os.path.expanduser(args.out))
    os.makedirs(out_dir, exist_ok=True)
    for name in file_names(args.languages):
        try:
            download(name, out_dir, force=args.force)
        except OSError as error:
            print(f"error: cannot download {url(name)}: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
