import subprocess
import sys

import tensorflow as tf

from seq2seq.data import tokenizers

LINES = ["ein kleines Haus", "zwei große Hunde laufen", "der Mann liest ein Buch"] * 30


def test_trained_model_reserves_control_ids_and_round_trips_in_graph(tmp_path):
    pairs = [(line, line.upper()) for line in LINES]
    src_path, tgt_path = tokenizers.train_tokenizers(
        pairs, tmp_path, vocab_size=40, model_type="unigram", joint=False
    )
    tok = tokenizers.load_tokenizer(src_path)
    assert tok.id_to_string(tokenizers.PAD_ID).numpy() == b"<pad>"
    assert tok.id_to_string(tokenizers.EOS_ID).numpy() == b"</s>"

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def round_trip(text):
        ids = tok.tokenize(text).to_tensor(0)
        return tok.detokenize(tf.RaggedTensor.from_tensor(ids, padding=0))

    out = round_trip(tf.constant(["ein kleines Haus", "der Mann"])).numpy()
    assert [x.decode() for x in out] == ["ein kleines Haus", "der Mann"]
    assert src_path.read_bytes() != tgt_path.read_bytes()


def test_joint_model_is_shared_and_bpe_works(tmp_path):
    pairs = [(line, line[::-1]) for line in LINES]
    src, tgt = tokenizers.train_tokenizers(
        pairs, tmp_path, vocab_size=50, model_type="bpe", joint=True
    )
    assert src.read_bytes() == tgt.read_bytes()
    assert tokenizers.vocabulary_size(tokenizers.load_tokenizer(src)) <= 50


def test_unknown_model_type_names_the_setting():
    try:
        tokenizers.train_sentencepiece(LINES, 30, "word-ish")
    except ValueError as e:
        assert "data.tokenizer.model_type" in str(e)
    else:
        raise AssertionError("no error")


def test_restricted_vocabularies_keep_only_each_sides_pieces(tmp_path):
    """A joint model over two scripts: each side's ids cover only its own pieces, an unseen
    piece is unk, and text round-trips through the compact ids."""
    pairs = [(line, line.replace("e", "ё").replace("a", "д")) for line in LINES]
    src_path, tgt_path = tokenizers.train_tokenizers(
        pairs,
        tmp_path,
        vocab_size=60,
        model_type="unigram",
        joint=True,
        restrict_vocabulary=True,
    )
    joint = tokenizers.load_tokenizer(src_path).sentencepiece
    src, tgt = tokenizers.load_tokenizer(src_path), tokenizers.load_tokenizer(tgt_path)
    assert tokenizers.vocabulary_size(src) < int(joint.vocab_size())
    assert tokenizers.vocabulary_size(src) != tokenizers.vocabulary_size(tgt)
    ids = src.tokenize(tf.constant(["ein kleines Haus"]))
    assert int(tf.reduce_max(ids.flat_values)) < tokenizers.vocabulary_size(src)
    assert src.detokenize(ids).numpy()[0].decode() == "ein kleines Haus"
    assert src.id_to_string(tokenizers.EOS_ID).numpy() == b"</s>"
    unseen = src.tokenize(tf.constant(["ё"])).flat_values.numpy()  # a target-only piece
    assert tokenizers.UNK_ID in unseen
    pieces = (tmp_path / "target.vocab").read_text(encoding="utf-8").splitlines()
    assert len(pieces) == tokenizers.vocabulary_size(tgt) and pieces[0].endswith("\t0")


def test_vocabulary_larger_than_the_corpus_allows_gets_fewer_pieces(tmp_path):
    """`vocab_size` is a soft limit (documented): no error, a smaller vocabulary."""
    pairs = [(line, line) for line in LINES]
    src, _ = tokenizers.train_tokenizers(
        pairs, tmp_path, vocab_size=100_000, model_type="unigram", joint=True
    )
    assert 4 < tokenizers.vocabulary_size(tokenizers.load_tokenizer(src)) < 200


def _one_rare_character_a_line(count):
    """Lines that each hold one character no other line has (CJK ideographs)."""
    return [f"ab {chr(0x4E00 + i)} ab" for i in range(count)]


def test_max_sentences_bounds_what_sentencepiece_reads(tmp_path):
    """character_coverage=1.0 makes every character read a piece: with 1,000 lines of distinct
    characters, a 150-line sample can give only 150 of them."""
    lines = _one_rare_character_a_line(1000)
    full = tokenizers.train_sentencepiece(lines, 5000, "unigram", max_sentences=10_000)
    sampled = tokenizers.train_sentencepiece(lines, 5000, "unigram", max_sentences=150)
    size = lambda proto: tokenizers.spm.SentencePieceProcessor(model_proto=proto).get_piece_size()  # noqa: E731
    assert size(full) > 1000
    assert size(sampled) < 200


def test_the_same_text_trains_the_same_model_in_another_process(tmp_path):
    """The sample of a capped corpus must not depend on the process (SentencePiece's own
    sampling did)."""
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(LINES + _one_rare_character_a_line(300)) + "\n", encoding="utf-8")
    script = (
        "import sys; from seq2seq.data import tokenizers; "
        "sys.stdout.buffer.write(tokenizers.train_sentencepiece_files("
        f"[{str(text)!r}], 500, 'unigram', max_sentences=150))"
    )
    protos = [
        subprocess.run([sys.executable, "-c", script], capture_output=True, check=True).stdout
        for _ in range(2)
    ]
    assert _pieces_and_scores(protos[0]) == _pieces_and_scores(protos[1])
    assert len(_pieces_and_scores(protos[0])) < 200  # the cap was applied


def _pieces_and_scores(proto):  # the proto also names the temporary files it was trained from
    processor = tokenizers.spm.SentencePieceProcessor(model_proto=proto)
    return [(processor.id_to_piece(i), processor.get_score(i)) for i in range(len(processor))]


def test_max_sentences_below_one_names_the_setting():
    try:
        tokenizers.train_sentencepiece(LINES, 30, "unigram", max_sentences=0)
    except ValueError as e:
        assert "data.tokenizer.max_sentences" in str(e)
    else:
        raise AssertionError("no error")
