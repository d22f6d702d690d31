"""What greedy and beam search share: their settings, scores, and the loop that runs them.

The searches are written by hand in core TensorFlow ops because no maintained Keras 3 library
offers GNMT beam search: keras_hub's `BeamSampler` has no length penalty, no per-beam EOS handling
and no finished set, and tf-models-official's `beam_search` needs `tf_keras` and TF 2.20.

They talk to the model only through its step function (`seq2seq.model.step`), run eagerly, inside
`tf.function` and inside a SavedModel traced with an unknown batch size. The loop (`run`) drops a
sentence from every tensor once it is done, so later steps run on the sentences still searching;
each sentence's result depends only on its own inputs, so it decodes the same alone and inside a
batch.
"""

import functools
from typing import NamedTuple

import tensorflow as tf

from seq2seq.data.tokenizers import PAD_ID
from seq2seq.inference import constraints
from seq2seq.model.step import NEG_INF


class Settings(NamedTuple):
    """Search settings shared by the step functions of the searches.

    `beam_size`, `n_best`, `min_length` and `no_repeat_ngram_size` are Python ints or int32
    scalar tensors, `alpha` a Python float or a float32 scalar tensor (inputs of a SavedModel
    signature, so one graph serves every setting).
    """

    bos_id: int
    eos_id: int
    min_length: int = 0
    beam_size: int | tf.Tensor = 1
    alpha: float | tf.Tensor = 0.0
    n_best: int | tf.Tensor = 1
    stopping: str = "bound"
    no_repeat_ngram_size: int | tf.Tensor = 0


def length_penalty(length, alpha):
    """GNMT length penalty `((5 + length) / 6) ** alpha`, as float32 (Wu et al. 2016, sec. 7)."""
    return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0, alpha)


def masked_logits(logits, step, settings):
    """Float32 logits with PAD and BOS masked, and EOS masked before `min_length` tokens."""
    vocab = tf.range(tf.shape(logits)[-1])
    banned = tf.equal(vocab, PAD_ID) | tf.equal(vocab, settings.bos_id)
    banned |= tf.equal(vocab, settings.eos_id) & (step < settings.min_length)
    # A (V,) row of 0 and -inf added: cheaper than a `tf.where` over (N, V).
    return tf.cast(logits, tf.float32) + tf.where(banned, NEG_INF, 0.0)


def constrained_logits(logits, step, seq, settings, forced=None):
    """`masked_logits`, and the tokens `no_repeat_ngram_size` bans in the hypotheses `seq`
    `(N, L)` at -inf, except in the rows where a prefix token is `forced` `(N,)`."""
    logits = masked_logits(logits, step, settings)
    n = settings.no_repeat_ngram_size
    if constraints.is_off(n):
        return logits

    def block():
        banned = constraints.banned_by_ngrams(seq, step, n, tf.shape(logits)[-1])
        if forced is not None:
            banned &= ~forced[:, None]
        return tf.where(banned, NEG_INF, logits)

    return block() if not tf.is_tensor(n) else tf.cond(n > 0, block, lambda: logits)


def write_tokens(seq, tokens, step):
    """Writes `tokens` `(...)` at position `step` of `seq` `(..., L)`."""
    at_step = tf.equal(tf.range(tf.shape(seq)[-1]), step)
    return tf.where(at_step, tokens[..., None], seq)


def search_memory(memory, prefix=None, per_sentence=None):
    """What a search's loop carries per sentence: the model's `memory`, the `prefix` (if any) and
    other per-sentence tensors; every entry has leading dim B, and leaves the loop with its
    sentence."""
    found = {"model": memory, **(per_sentence or {})}
    if prefix is not None:
        found["prefix"] = prefix
    return found


def prepare_max_lengths(max_lengths):
    """`max_lengths` as int32 of at least 1, and the output length `L = max(max_lengths)`."""
    max_lengths = tf.maximum(tf.cast(max_lengths, tf.int32), 1)
    return max_lengths, tf.reduce_max(max_lengths)


class Loop(NamedTuple):
    """The loop variables of `run`: a search's own state for the A sentences still searching."""

    search: NamedTuple  # the search's loop variables; `done` (A,) among them
    memory: object  # nested, leading dim A
    max_lengths: tf.Tensor  # (A,)
    rows: tf.Tensor  # (A,) the input sentence of each active one
    outputs: tuple  # the search's results for every input sentence, leading dim B


def run(search, step, memory, max_lengths, max_len, *, results, row_fields, rows_per_sentence):
    """Applies `step` to `search` until every sentence is done or `max_len` steps ran.

    Args:
        search: the search's loop variables (a NamedTuple with `step` and `done` fields).
        step: `(search, memory, max_lengths) -> search`, one step for the active sentences.
        memory, max_lengths: per sentence (leading dim B).
        max_len: the most steps any sentence takes.
        results: `search -> tuple` of per-sentence tensors to return, taken from each sentence
            at the step it is done.
        row_fields: the fields of `search` whose leading dim is `A * rows_per_sentence` (the
            hypotheses); every other non-scalar field has leading dim A.
        rows_per_sentence: Python int or int32 scalar tensor (the beam size).

    Returns:
        `results` of every input sentence.
    """
    batch = tf.shape(max_lengths)[0]
    start = Loop(search, memory, max_lengths, tf.range(batch), results(search))
    shrinking = tf.nest.map_structure(_any_leading_dim, start[:4])
    invariants = Loop(*shrinking, tf.nest.map_structure(lambda x: x.shape, start.outputs))
    drop = functools.partial(
        _drop_done, results=results, row_fields=row_fields, rows_per_sentence=rows_per_sentence
    )

    def body(loop):
        loop = loop._replace(search=step(loop.search, loop.memory, loop.max_lengths))
        return tf.cond(tf.reduce_any(loop.search.done), lambda: drop(loop), lambda: loop)

    end = tf.while_loop(
        lambda loop: (loop.search.step < max_len) & (tf.size(loop.rows) > 0),
        lambda loop: (_with_shapes(body(loop), invariants),),
        (start,),
        shape_invariants=(invariants,),
    )[0]
    return end.outputs


def _drop_done(loop, *, results, row_fields, rows_per_sentence):
    """`loop` without its done sentences, their results copied out."""
    done = tf.cast(tf.reshape(tf.where(loop.search.done), [-1]), tf.int32)
    where = tf.gather(loop.rows, done)[:, None]
    outputs = tuple(
        tf.tensor_scatter_nd_update(out, where, tf.gather(new, done))
        for out, new in zip(loop.outputs, results(loop.search))
    )
    keep = tf.cast(tf.reshape(tf.where(~loop.search.done), [-1]), tf.int32)  # (A',)
    k = rows_per_sentence
    keep_rows = tf.reshape(keep[:, None] * k + tf.range(k)[None, :], [-1])

    def gather(indices):
        return lambda x: x if x.shape.rank == 0 else tf.gather(x, indices)

    fields = {
        name: tf.nest.map_structure(gather(keep_rows if name in row_fields else keep), value)
        for name, value in loop.search._asdict().items()
    }
    return Loop(
        search=type(loop.search)(**fields),
        memory=tf.nest.map_structure(gather(keep), loop.memory),
        max_lengths=tf.gather(loop.max_lengths, keep),
        rows=tf.gather(loop.rows, keep),
        outputs=outputs,
    )


def _any_leading_dim(x):
    """The shape invariant of a tensor whose leading dim shrinks (a scalar keeps its shape)."""
    shape = tf.convert_to_tensor(x).shape
    return shape if shape.rank == 0 else tf.TensorShape([None, *shape[1:]])


def _with_shapes(new, shapes):
    """Gives every tensor of `new` its shape in `shapes`: shape inference can know more about a
    loop's initial values than about a step's outputs, and `tf.while_loop` rejects shapes that
    become less specific."""
    tf.nest.map_structure(lambda x, shape: x.set_shape(shape), new, shapes)
    return new
