"""Coverage-guided fuzzing (atheris) of market-data frames, with the property of
``test_fuzz_frames``: a frame is applied exactly as the reference model says, or refused and
counted, never a silent change of the book. Run by ``make fuzz`` when atheris is installed
(``pip install -e '.[fuzz]'``); any libFuzzer flag works, e.g. ``-atheris_runs=200000``.

    .venv/bin/python tests/fuzz/atheris_frames.py -atheris_runs=100000
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports():
    from test_fuzz_frames import WALL_MS, book_levels, fresh_state, parse, reference

SEEDS = [
    b'{"table":"orderBookL2","action":"update","data":[{"symbol":"XBTUSD","id":21,"side":"Buy",'
    b'"size":7,"timestamp":"2027-01-15T08:00:00.000Z"}]}',
]


def one_frame(payload: bytes) -> None:
    state = fresh_state()
    before = book_levels(state)
    counters = state.counters
    seen = (counters.rejected, counters.malformed, counters.gaps)
    state.on_frame(payload, 0.2, WALL_MS)
    book = state.books["orderBookL2"].book("XBTUSD")
    if (counters.rejected, counters.malformed, counters.gaps) != seen:
        if book.valid and book_levels(state) != before:
            expected = reference(parse(payload), mine_only=True)
            assert book_levels(state) == expected, payload
        return
    expected = reference(parse(payload))
    assert expected is not None, f"taken silently: {payload!r}"
    assert book.valid and book_levels(state) == expected, payload


def main() -> None:
    corpus = Path(__file__).resolve().parent / "corpus_frames"
    corpus.mkdir(exist_ok=True)
    for n, seed in enumerate(SEEDS):
        (corpus / f"seed{n}").write_bytes(seed)
    crashes = Path(__file__).resolve().parent / "crashes"
    crashes.mkdir(exist_ok=True)
    atheris.Setup([*sys.argv, f"-artifact_prefix={crashes}/", str(corpus)], one_frame)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
