"""What TensorBoard shows beyond Keras's scalars: dev samples, attention heatmaps, HParams."""

import io

import tensorflow as tf
from matplotlib.figure import Figure
from tensorboard.plugins.hparams import api as hparams_api

from seq2seq.data.tokenizers import BOS_ID


def attention_samples(translator, sentences):
    """Greedy translations of `sentences` with their attention weights and subword pieces.

    Re-running the decoder teacher-forced on its own output gives exactly the attention of the
    search. Returns dicts with hypothesis, weights (tgt, src), pieces.
    """
    ids, _, lengths = translator.search(tf.constant(sentences), 1, 1, 0.0)
    hyp = ids[:, 0, :]
    source_ids, _ = translator.encode_text(tf.constant(sentences))
    decoder_in = tf.concat([tf.fill([tf.shape(hyp)[0], 1], BOS_ID), hyp[:, :-1]], 1)
    _, weights = translator.model.forward_with_attention(
        {"encoder_token_ids": source_ids, "decoder_token_ids": decoder_in}, training=False
    )
    texts = translator.detokenize(hyp, lengths).numpy()
    samples = []
    for i, sentence in enumerate(sentences):
        tgt_len = int(tf.reduce_sum(tf.cast(hyp[i] != 0, tf.int32)))
        src_len = int(lengths[i])
        samples.append(
            {
                "source": sentence,
                "hypothesis": texts[i].decode("utf-8"),
                "weights": weights[i, :tgt_len, :src_len].numpy(),
                "source_pieces": _pieces(translator.source_tokenizer, source_ids[i, :src_len]),
                "target_pieces": _pieces(translator.target_tokenizer, hyp[i, :tgt_len]),
            }
        )
    return samples


def _pieces(tokenizer, ids):
    return [p.decode("utf-8") for p in tokenizer.id_to_string(ids).numpy()]


def heatmap_png(weights, source_pieces, target_pieces):
    """A labelled attention heatmap (target pieces down, source pieces across) as PNG bytes."""
    height = max(2.5, 0.28 * len(target_pieces) + 1.2)
    width = max(3.0, 0.32 * len(source_pieces) + 1.5)
    fig = Figure(figsize=(width, height), dpi=80)  # no pyplot: works headless and in notebooks
    ax = fig.subplots()
    ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source_pieces)), source_pieces, rotation=90, fontsize=8)
    ax.set_yticks(range(len(target_pieces)), target_pieces, fontsize=8)
    ax.set_xlabel("source pieces")
    ax.set_ylabel("target pieces")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def write_samples(writer, samples, references, step):
    """Text table and attention heatmaps of the dev samples, at `step`."""
    rows = ["| # | source | reference | hypothesis |", "|---|---|---|---|"]
    for i, (sample, reference) in enumerate(zip(samples, references)):
        cells = (sample["source"], reference, sample["hypothesis"])
        rows.append(f"| {i} | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    with writer.as_default():
        tf.summary.text("dev/samples", "\n".join(rows), step=step)
        for i, sample in enumerate(samples):
            png = heatmap_png(sample["weights"], sample["source_pieces"], sample["target_pieces"])
            image = tf.image.decode_png(png, channels=4)[None]
            tf.summary.image(f"dev/attention_{i}", image, step=step)
            tf.summary.histogram(f"dev/attention_row_sums_{i}", sample["weights"].sum(1), step=step)


def write_hparams(log_dir, hparams, run_name):
    """Logs the run's hyperparameters for TensorBoard's HParams dashboard.

    TensorBoard finds a metric's values in the run of the HParams session joined with the
    metric's group: the group is empty, so `write_final_metrics` writes into `log_dir` too.
    """
    with tf.summary.create_file_writer(log_dir).as_default():
        hparams_api.hparams_config(
            hparams=[hparams_api.HParam(k) for k in hparams],
            metrics=[hparams_api.Metric(f"final/{m}") for m in FINAL_METRICS],
        )
        hparams_api.hparams(hparams, trial_id=run_name)


FINAL_METRICS = ("test_bleu", "test_chrf", "validation_bleu", "validation_chrf")


def write_final_metrics(log_dir, results, step):
    """The run's final scores, as `write_hparams` declared them (the same `log_dir`)."""
    with tf.summary.create_file_writer(log_dir).as_default():
        for split in ("test", "validation"):
            for name in ("bleu", "chrf"):
                tf.summary.scalar(f"final/{split}_{name}", results[split][name], step=step)


def flatten_config(tree, prefix=""):
    """{"model": {"units": 8}} -> {"model.units": 8}, keeping only HParams-friendly values."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_config(value, name + "."))
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        elif value is None:
            flat[name] = "null"
    return flat
