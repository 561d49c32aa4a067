"""Protocol knowledge per venue."""
