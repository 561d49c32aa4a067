"""Run every benchmark in bench/ in turn and print each one's output (``make bench``).

Each script runs in its own interpreter with its defaults; a failing script is reported and the
others still run. The exit status is the number of scripts that failed (0 when all passed).

    .venv/bin/python bench/run_all.py                 # all of them
    .venv/bin/python bench/run_all.py aws_backoff     # only the named ones
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scripts(only: list[str]) -> list[Path]:
    found = sorted(p for p in HERE.glob("*.py")
                   if p.name != Path(__file__).name and not p.name.startswith("_"))
    if only:
        wanted = {name.removesuffix(".py") for name in only}
        found = [p for p in found if p.stem in wanted]
    return found


def main() -> int:
    failed: list[str] = []
    selected = scripts(sys.argv[1:])
    for script in selected:
        print(f"\n=== {script.name} " + "=" * max(0, 70 - len(script.name)), flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        took = time.monotonic() - started
        print(f"--- {script.name}: {'ok' if code == 0 else f'FAILED (exit {code})'} "
              f"in {took:.0f} s", flush=True)
        if code != 0:
            failed.append(script.name)
    print(f"\n{len(selected) - len(failed)} of {len(selected)} benchmarks ran"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return len(failed)


if __name__ == "__main__":
    sys.exit(main())
