"""The live status line, the stream that keeps it intact, and progress output."""

from __future__ import annotations

import io

from venueguard.app.status import Progress, StatusAwareStream, StatusLine, format_status

STATE: dict[str, object] = {
    "venue_state": "DEGRADED",
    "regime": "CAUTIOUS",
    "liveness": {"data_age_s": 0.42, "fresh": True, "reconnects": 2},
    "api": {"latency_p95": 0.125, "http_503_per_min": 7.0},
    "market": {"symbol": "XBTUSD", "best_bid": 50000.0, "best_ask": 50000.5},
    "snapshots": {"missing_ratio": 0.025},
    "signal": {"direction": -1},
}


def test_format_status_shows_the_essentials() -> None:
    line = format_status(STATE, elapsed_s=3723.9)
    assert line.startswith("01:02:03 XBTUSD 50000/50000.5 spr 0.5 | fresh 0.4s |")
    for part in ("venue DEGRADED", "regime CAUTIOUS",
                 "503/min 7", "p95 125ms", "reconn 2", "miss 2.5%", "signal down"):
        assert part in line, part
    assert "PAUSED" not in line
    assert "\n" not in line


def test_format_status_with_unknowns_and_pause() -> None:
    line = format_status({"liveness": {"fresh": False}, "strategy": {"paused": True},
                          "market": {"best_bid": None}}, elapsed_s=0)
    assert "no book" in line and "| STALE |" in line and "503/min -" in line
    assert "p95 -" in line and line.endswith("PAUSED")


def test_tty_redraws_in_place() -> None:
    out = io.StringIO()
    status = StatusLine(out, tty=True, width=40)
    status.show("first", now=0.0)
    status.show("second\nline", now=0.1)
    assert out.getvalue() == "\rfirst\x1b[K\rsecond line\x1b[K"
    status.close()
    assert out.getvalue().endswith("\r\x1b[Ksecond line\n")


def test_tty_truncates_to_the_terminal_width() -> None:
    out = io.StringIO()
    StatusLine(out, tty=True, width=20).show("x" * 100, now=0.0)
    assert out.getvalue() == "\r" + "x" * 19 + "\x1b[K"


def test_plain_stream_prints_periodic_lines_only() -> None:
    out = io.StringIO()
    status = StatusLine(out, tty=False, plain_every_s=10.0)
    for t in range(25):
        status.show(f"t={t}", now=float(t))
    assert out.getvalue().splitlines() == ["t=0", "t=10", "t=20"]
    assert "\r" not in out.getvalue()
    status.close("stopped")
    assert out.getvalue().endswith("stopped\n")


def test_status_aware_stream_clears_and_redraws() -> None:
    out = io.StringIO()
    status = StatusLine(out, tty=True, width=80)
    events = StatusAwareStream(out, status)  # type: ignore[arg-type]
    status.show("status", now=0.0)
    events.write("event one\n")
    assert out.getvalue() == "\rstatus\x1b[K" + "\r\x1b[K" + "event one\n" + "\rstatus\x1b[K"


def test_a_broken_stream_never_raises() -> None:
    out = io.StringIO()
    out.close()
    status = StatusLine(out, tty=True)
    status.show("x", now=0.0)
    status.close()
    assert status.write_errors >= 1


def test_progress_on_a_pipe_prints_each_step() -> None:
    out = io.StringIO()
    ticks = iter([0.0, 1.0, 2.0, 3.5])
    progress = Progress(out, "report", total=3, tty=False, clock=lambda: next(ticks))
    progress.step("reading")
    progress.step("plotting")
    progress.done("wrote report.html")
    assert out.getvalue().splitlines() == [
        "report [1/3] reading", "report [2/3] plotting", "report: wrote report.html (3.5s)"]


def test_progress_on_a_tty_stays_on_one_line() -> None:
    out = io.StringIO()
    progress = Progress(out, "report", total=2, tty=True)
    progress.step("a")
    progress.step("b")
    progress.step("c")  # more steps than announced never shows 3/2
    text = out.getvalue()
    assert "\n" not in text and "[2/2] c" in text and "[3/2]" not in text
