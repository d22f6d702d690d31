"""Evaluation: sacreBLEU scores with their signatures, and scoring a model on sentences.

- `metrics`: BLEU, chrF, TER, Moses-tokenized lowercased BLEU, exact match;
- `scoring`: translating a list of sentences in batches and scoring the result.
"""
