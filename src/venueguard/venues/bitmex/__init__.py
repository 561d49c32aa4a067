"""BitMEX: signing, topics, message parsing, error texts."""
