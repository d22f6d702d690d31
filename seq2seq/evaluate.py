"""`python -m seq2seq.evaluate`: score an exported model on a data split or on parallel files.

    python -m seq2seq.evaluate --model RUN_DIR --split test
    python -m seq2seq.evaluate --model RUN_OR_EXPORT --source test.en --reference test.de

A split is read with the data config of the run (`<run>/config.yaml`, `data` section). Reports
sacreBLEU BLEU, chrF and TER (detokenized, cased, with signatures), BLEU on Moses-tokenized
lowercased text (as published Multi30k results), exact match and sentences/s. Prints a table and
writes the same as JSON (default `<run or export folder>/evaluation_<split or files>.json`).
"""

import argparse
import sys
import time
from pathlib import Path

from seq2seq import cli
from seq2seq.config import load_run_config
from seq2seq.evaluation.metrics import exact_match_by_group, full_scores
from seq2seq.files import atomic_write_json
from seq2seq.inference.batching import Progress, translate_sorted
from seq2seq.inference.exported import batch_translator, load_export
from seq2seq.inference.threads import configure_decoding_threads
from seq2seq.lines import read_lines, write_lines
from seq2seq.run_folder import RunFolder, run_folder_of

TABLE_ROWS = (
    ("BLEU", "bleu", "bleu_signature"),
    ("chrF", "chrf", "chrf_signature"),
    ("TER", "ter", "ter_signature"),
    ("BLEU tok lc", "bleu_tok_lc", "bleu_tok_lc_signature"),
    ("exact match %", "exact_match", None),
    ("sentences", "sentences", None),
    ("sentences/s", "sentences_per_second", None),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m seq2seq.evaluate",
        description="Score an exported seq2seq model (BLEU, chrF, TER, tokenized lowercased BLEU).",
    )
    parser.add_argument("--model", required=True, help="export folder or run folder")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--split", choices=("test", "validation"), help="a split of the run's data")
    data.add_argument("--source", help="source sentences, one per line (needs --reference)")
    parser.add_argument("--reference", help="reference translations, line-aligned with --source")
    parser.add_argument("--data-dir", help="TFDS data dir for --split (default: the run's)")
    parser.add_argument(
        "--target-language", help="Moses tokenizer language (default: the run's target language)"
    )
    cli.add_batching_arguments(parser)
    cli.add_decoding_arguments(parser, n_best=False)
    parser.add_argument("--output-json", help="default: <run or export>/evaluation_<data>.json")
    parser.add_argument("--hypotheses", help="also write the translations here, one per line")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser


def main(argv=None) -> int:
    """Runs the command; returns the exit code (2 for bad arguments, paths or input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.source is None) != (args.reference is None):
        parser.error("--source and --reference go together")
    code, report = cli.run_tool("seq2seq.evaluate", evaluate, args)
    if report:
        print(format_table(report))
    return code


def evaluate(args) -> dict:
    """Translates the data, scores it, writes the JSON (and hypotheses); returns the report."""
    options = cli.decode_options(args)
    decoding = options.describe()  # also checks the options
    export_dir = cli.find_model(args.model)
    run_folder = run_folder_of(export_dir)
    json_path = args.output_json or default_json_path(run_folder, export_dir, args, decoding)
    for path, option in ((args.output_json, "--output-json"), (args.hypotheses, "--hypotheses")):
        cli.check_writable(path, option)
    cli.quiet_tensorflow()
    configure_decoding_threads(args.parallel_batches, args.intra_op_threads)
    sources, references, data, language = load_data(args, run_folder)
    run_batch = batch_translator(load_export(export_dir), options)
    run_batch([min(sources, key=len)])  # warm-up: sentences/s leaves out one-time costs
    start = time.monotonic()
    progress = None if args.quiet else Progress(len(sources))
    results = translate_sorted(run_batch, sources, args.batch_size, progress, args.parallel_batches)
    seconds = time.monotonic() - start
    hypotheses = [hypotheses[0].text for hypotheses in results]
    report = {"model": str(export_dir.resolve()), "data": data, "decoding": decoding}
    report.update(full_scores(hypotheses, references, language))
    if data.get("groups"):
        groups = data.pop("groups")
        report["exact_match_by_group"] = exact_match_by_group(hypotheses, references, groups)
    report.update(seconds=seconds, sentences_per_second=len(sources) / max(seconds, 1e-9))
    report["json"] = write_json(json_path, report, explicit=args.output_json is not None)
    if args.hypotheses:
        write_lines(args.hypotheses, hypotheses)
    return report


def default_json_path(run_folder, export_dir, args, decoding) -> Path:
    """`evaluation_<split>.json` or `evaluation_files_<source name>.json`, plus any options, in
    the run folder (or the export folder when there is none)."""
    name = args.split or f"files_{Path(args.source).name}"
    if "beam_size" in decoding:
        name += f"_beam{decoding['beam_size']}_alpha{decoding['alpha']:g}"
    if "min_length" in decoding:
        name += f"_min{decoding['min_length']}_norepeat{decoding['no_repeat_ngram_size']}"
        name += "_prefix" if decoding["prefix"] else ""
    return (run_folder or RunFolder(export_dir)).evaluation(name)


def load_data(args, run_folder):
    """(sources, references, description, Moses language) from --split or --source/--reference.

    Raises:
        UsageError: Missing or unreadable files, different line counts, no run config for
            --split, or no target language known.
    """
    config = load_run_config(run_folder.config) if run_folder else None
    if args.split:
        if config is None:
            raise cli.UsageError(
                "--split needs the run folder's config.yaml next to the export: "
                "give a run folder, or use --source/--reference"
            )
        sources, references, data = _load_split(config, args.split, args.data_dir)
        data["config"] = str(run_folder.config.resolve())
    else:
        sources, references = read_lines(args.source), read_lines(args.reference)
        if len(sources) != len(references):
            raise cli.UsageError(
                f"{args.source} has {len(sources)} lines but {args.reference} has {len(references)}"
            )
        data = {"source": str(Path(args.source).resolve())}
        data["reference"] = str(Path(args.reference).resolve())
    if not sources:
        raise cli.UsageError(f"no sentences to score in {args.source or args.split}")
    language = args.target_language or (config and config.data.target_language)
    if not language:
        raise cli.UsageError("--target-language is needed (no run config to read it from)")
    return sources, references, data, language


def _load_split(config, split, data_dir):
    """Reads a split with the run's data config (as training did); returns its texts."""
    from seq2seq.data.sources import load_configured_splits
    from seq2seq.evaluation.scoring import split_groups, split_texts

    if data_dir:
        config.data.data_dir = data_dir
    try:
        splits = load_configured_splits(config.data)
    except (ValueError, OSError, ConnectionError) as error:
        source = config.data.source
        raise cli.UsageError(
            f"cannot load the {split} split of data.source={source}: {error}"
        ) from None
    sources, references = split_texts(splits[split])
    data = {"split": split, "data_source": config.data.source, "data_dir": config.data.data_dir}
    data["groups"] = split_groups(splits[split])
    return sources, references, data


def write_json(path, report, *, explicit):
    """Writes the report atomically; returns the path, or None if a default path is read-only.

    Raises:
        UsageError: An explicitly given path cannot be written.
    """
    try:
        atomic_write_json(path, report)
    except OSError as error:
        if explicit:
            raise cli.UsageError(f"--output-json {path}: cannot write: {error.strerror}") from None
        print(
            f"note: {path} is not writable ({error.strerror}); use --output-json", file=sys.stderr
        )
        return None
    return str(path)


def format_table(report) -> str:
    """The report as aligned `name  value  signature` rows."""
    data = report["data"]
    if "split" in data:
        what = f"{data['split']} split of data.source={data['data_source']}"
    else:
        what = f"{data['source']} -> {data['reference']}"
    decoding = report["decoding"]
    if "beam_size" in decoding:
        how = f"translate_options: beam {decoding['beam_size']}, alpha {decoding['alpha']:g}"
    else:
        how = "serving_default (decoding settings baked in at export)"
    rows = [("model", report["model"], ""), ("data", what, ""), ("decoding", how, "")]
    for label, key, signature in TABLE_ROWS:
        value = report[key]
        text = str(value) if isinstance(value, int) else f"{value:.2f}"
        rows.append((label, text, report[signature] if signature else ""))
    for group, value in report.get("exact_match_by_group", {}).items():
        rows.append((f"  {group}", f"{value:.2f}", ""))
    rows.append(("JSON", report["json"] or "(not written)", ""))
    width = max(len(label) for label, _, _ in rows)
    value_width = max(len(value) for _, value, sig in rows if sig)
    lines = [f"{label:<{width}}  {value:<{value_width}}  {sig}" for label, value, sig in rows]
    return "\n".join(line.rstrip() for line in lines)


if __name__ == "__main__":
    sys.exit(main())
