#!/usr/bin/env python
"""Training and decoding throughput and peak memory as one JSON object (see --help).

The same as `python -m seq2seq.benchmark`; e.g.
    python scripts/benchmark.py data.manual_dir=../shared/data/multi30k
"""

from seq2seq.benchmark import main

if __name__ == "__main__":
    main()
