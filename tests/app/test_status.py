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


def test_an_80_column_terminal_gets_the_essentials_uncut() -> None:
    """The full line is ~150 characters; on a terminal it takes the narrow form and leaves out
    the least important fields first, so an 80-column terminal never cuts it mid-field."""
    wide = {**STATE, "market": {"symbol": "BTCUSDT", "best_bid": 104123.4,
                                "best_ask": 104123.5},
            "venue_state": "COOLDOWN", "regime": "RECOVERING",
            "api": {"latency_p95": 0.955, "http_503_per_min": 1234.0}}
    for state in (STATE, wide):
        line = format_status(state, elapsed_s=3723.9, width=79)
        assert len(line) <= 79, line
        market = state["market"]
        assert isinstance(market, dict)
        assert line.startswith(f"01:02:03 {market['symbol']} {market['best_bid']:.10g}"
                               f"/{market['best_ask']:.10g} fresh 0.4s ")
        assert f" {state['venue_state']} {state['regime']} 503/m " in line, line
    line = format_status(STATE, elapsed_s=3723.9, width=100)
    assert line == ("01:02:03 XBTUSD 50000/50000.5 fresh 0.4s DEGRADED CAUTIOUS 503/m 7 "
                    "p95 125ms rc 2 miss 2.5% sig down")


def test_narrow_lines_drop_the_least_important_fields_last_first() -> None:
    seen = []
    for width in range(150, 47, -1):
        line = format_status({**STATE, "strategy": {"paused": True}}, elapsed_s=1, width=width)
        assert len(line) <= width
        assert "PAUSED" in line and "fresh 0.4s" in line  # never left out
        seen.append(line)
    order = ["signal", "sig", "miss", "rc ", "p95", "503/m", "CAUTIOUS", "DEGRADED"]
    gone_at = [next(i for i, line in enumerate(seen) if word not in line) for word in order[1:]]
    assert gone_at == sorted(gone_at), gone_at


def test_prices_keep_their_digits() -> None:
    line = format_status({"market": {"symbol": "BTCUSDT", "best_bid": 104123.4,
                                     "best_ask": 104123.5}}, elapsed_s=0)
    assert "104123.4/104123.5 spr 0.1" in line


def test_columns_is_the_terminal_width_less_one_on_a_tty_only() -> None:
    assert StatusLine(io.StringIO(), tty=True, width=80).columns == 79
    assert StatusLine(io.StringIO(), tty=False, width=80).columns is None
