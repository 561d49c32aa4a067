"""EventLog: line format, timestamps, redaction, memory, subscribers, pretty format."""

from __future__ import annotations

import enum
import io
import re

import orjson
import pytest

from venueguard.telemetry.events import (
    REDACTED,
    EventLog,
    Redactor,
    format_pretty,
    is_secret_key,
    iso_utc_ms,
    register_secret,
)

T0 = 1795435200.0  # 2026-11-23T12:00:00Z


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_line_with_ts_and_event_first() -> None:
    out = io.StringIO()
    log = EventLog(out, wall_clock=Clock(T0 + 0.1239))
    log.emit("ws.reconnecting", attempt=2, delay_s=0.75)
    log.emit("rest.error", status=503, kind="overload", endpoint="/order")
    raw = out.getvalue().splitlines()
    assert len(raw) == 2
    first = orjson.loads(raw[0])
    assert list(first) == ["ts", "event", "attempt", "delay_s"]
    assert first == {"ts": "2026-11-23T12:00:00.123Z", "event": "ws.reconnecting",
                     "attempt": 2, "delay_s": 0.75}
    assert lines(out)[1]["status"] == 503


@pytest.mark.parametrize(("epoch", "text"), [
    (T0, "2026-11-23T12:00:00.000Z"),
    (T0 + 0.9999, "2026-11-23T12:00:00.999Z"),  # truncated, never rounded into the next second
    (T0 + 86399.5, "2026-11-24T11:59:59.500Z"),
    (0.001, "1970-01-01T00:00:00.001Z"),
])
def test_timestamps_are_iso_utc_with_milliseconds(epoch: float, text: str) -> None:
    assert iso_utc_ms(epoch) == text
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)


def test_from_underscore_becomes_from_key() -> None:
    log = EventLog()
    log.emit("regime.changed", from_="NORMAL", to="CAUTIOUS", reason="503_rate")
    record = log.recent(1)[0]
    assert record["from"] == "NORMAL" and "from_" not in record
    assert list(record)[2:] == ["from", "to", "reason"]


def test_reserved_keys_do_not_replace_ts_or_event() -> None:
    log = EventLog(wall_clock=Clock())
    log.emit("x", ts="fake")
    record = log.recent(1)[0]
    assert record["ts"] == "2026-11-23T12:00:00.000Z"
    assert record["ts_field"] == "fake"


@pytest.mark.parametrize("key", ["api_secret", "secret", "signature", "api-signature",
                                 "API-Signature", "password", "token", "ws_token",
                                 "apiSecret_secret"])
def test_secret_named_fields_are_redacted_at_any_depth(key: str) -> None:
    out = io.StringIO()
    log = EventLog(out)
    log.emit("order.sent", **{key: "hunter22"}, headers={key: "hunter22", "api-key": "abc"},
             rows=[{key: "hunter22"}])
    text = out.getvalue()
    assert "hunter22" not in text
    record = lines(out)[0]
    assert record[key] == REDACTED
    assert record["headers"] == {key: REDACTED, "api-key": "abc"}
    assert record["rows"] == [{key: REDACTED}]
    assert "hunter22" not in repr(log.recent())


def test_ordinary_keys_are_not_secret() -> None:
    for key in ("api_key", "symbol", "tokens_left", "secretary"):
        assert not is_secret_key(key), key


def test_registered_secret_values_are_redacted_wherever_they_appear() -> None:
    out = io.StringIO()
    log = EventLog(out, fmt="pretty")
    log.register_secret("s3cr3t-VALUE")
    log.emit("rest.error", message="auth failed for s3cr3t-VALUE", raw="s3cr3t-VALUE",
             nested={"list": ["s3cr3t-VALUE", 1]}, error=ValueError("bad s3cr3t-VALUE"))
    assert "s3cr3t-VALUE" not in out.getvalue()
    record = log.recent(1)[0]
    assert record["raw"] == REDACTED
    assert record["message"] == "auth failed for ***"
    assert record["nested"] == {"list": [REDACTED, 1]}
    assert record["error"] == "bad ***"


def test_process_wide_secret_applies_to_every_log() -> None:
    register_secret("global-secret-0451")
    log_a, log_b = EventLog(), EventLog()
    log_a.emit("a", v="global-secret-0451")
    log_b.emit("b", v="x global-secret-0451 y")
    assert log_a.recent()[0]["v"] == REDACTED
    assert log_b.recent()[0]["v"] == "x *** y"


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError):
        Redactor().register("abc")


def test_values_become_json_friendly() -> None:
    class Colour(enum.Enum):
        RED = "red"

    log = EventLog(io.StringIO())
    log.emit("x", colour=Colour.RED, nan=float("nan"), tup=(1, 2), data=b"bytes", none=None)
    record = log.recent(1)[0]
    assert record == {"ts": record["ts"], "event": "x", "colour": "red", "nan": None,
                      "tup": [1, 2], "data": "bytes", "none": None}


def test_ring_buffer_keeps_the_last_records_and_filters() -> None:
    log = EventLog(keep=5)
    for i in range(12):
        log.emit("alert" if i % 3 == 0 else "ws.connected", i=i)
    assert [r["i"] for r in log.recent()] == [7, 8, 9, 10, 11]
    assert [r["i"] for r in log.recent(2)] == [10, 11]
    assert [r["i"] for r in log.recent(event="alert")] == [9]
    assert log.recent(0) == []


def test_subscribers_see_records_and_failures_do_not_break_emit() -> None:
    out = io.StringIO()
    log = EventLog(out)
    seen: list[dict[str, object]] = []

    def broken(_: dict[str, object]) -> None:
        raise RuntimeError("subscriber bug")

    log.subscribe(broken)
    log.subscribe(seen.append)
    log.emit("ws.stale", reason="data_age", password="pw-123456")
    assert len(seen) == 1 and seen[0]["reason"] == "data_age"
    assert seen[0]["password"] == REDACTED
    assert log.subscriber_errors == 1
    assert len(out.getvalue().splitlines()) == 1
    log.unsubscribe(broken)
    log.emit("ws.connected")
    assert log.subscriber_errors == 1 and len(seen) == 2


def test_a_subscriber_that_emits_cannot_recurse_forever() -> None:
    log = EventLog()
    log.subscribe(lambda record: log.emit("echo", of=record["event"]))
    log.emit("start")
    assert 2 <= len(log.recent()) <= 5


def test_broken_stream_is_counted_not_raised() -> None:
    stream = io.StringIO()
    stream.close()
    log = EventLog(stream)
    log.emit("ws.connected")
    assert log.write_errors == 1
    assert log.recent(1)[0]["event"] == "ws.connected"


def test_each_line_is_flushed() -> None:
    class Recorder(io.StringIO):
        flushes = 0

        def flush(self) -> None:
            self.flushes += 1
            super().flush()

    out = Recorder()
    log = EventLog(out)
    log.emit("a")
    log.emit("b")
    assert out.flushes == 2


def test_pretty_format_is_a_readable_one_liner() -> None:
    out = io.StringIO()
    log = EventLog(out, fmt="pretty", wall_clock=Clock(T0 + 0.5))
    log.emit("ws.reconnecting", attempt=3, delay_s=1.5, reason="pong timeout")
    log.emit("alert", tier="critical", message="venue blocked")
    first, second = out.getvalue().splitlines()
    assert first == ('2026-11-23T12:00:00.500Z ws.reconnecting attempt=3 delay_s=1.5 '
                     'reason="pong timeout"')
    assert second.startswith("2026-11-23T12:00:00.500Z alert[CRITICAL] ")
    assert 'message="venue blocked"' in second
    assert format_pretty({"ts": "t", "event": "e", "d": {"a": 1}}) == 't e d={"a":1}'


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="fmt"):
        EventLog(fmt="xml")


def test_events_also_reach_the_logging_module_with_a_level(
        caplog: pytest.LogCaptureFixture) -> None:
    import io
    import logging

    import orjson

    out = io.StringIO()
    log = EventLog(out, wall_clock=lambda: 1_795_435_200.0)
    log.register_secret("top-secret-key")
    with caplog.at_level(logging.DEBUG, logger="venueguard"):
        log.emit("ws.stale", reason="data_age", age_s=12.5)
        log.emit("ws.connected", url="ws://x")
        log.emit("alert", tier="critical", message="leak top-secret-key", key="k")
        log.emit("monitor.task_failed", task="market", error="boom")
    got = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert got == [
        ("venueguard.ws", logging.WARNING, "ws.stale reason=data_age age_s=12.5"),
        ("venueguard.ws", logging.INFO, "ws.connected url=ws://x"),
        ("venueguard.alert", logging.CRITICAL, "alert[CRITICAL] message=\"leak ***\" key=k"),
        ("venueguard.monitor", logging.ERROR, "monitor.task_failed task=market error=boom"),
    ]
    structured = caplog.records[0].venueguard_event  # type: ignore[attr-defined]
    assert structured == {"ts": "2026-11-23T12:00:00.000Z", "event": "ws.stale",
                          "reason": "data_age", "age_s": 12.5}
    # the JSON lines on the stream keep their shape
    first = orjson.loads(out.getvalue().splitlines()[0])
    assert list(first) == ["ts", "event", "reason", "age_s"]
    assert "top-secret-key" not in out.getvalue() + caplog.text


def test_logging_below_the_level_costs_nothing_and_a_failing_handler_is_counted() -> None:
    import logging

    class Exploding(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise RuntimeError("handler bug")

    logger = logging.getLogger("venueguard.order")
    handler = Exploding()
    logger.addHandler(handler)
    old_raise = logging.raiseExceptions
    logging.raiseExceptions = False
    try:
        logger.setLevel(logging.ERROR)
        log = EventLog()
        log.emit("order.sent", cl_ord_id="a")  # INFO: filtered before formatting
        logger.setLevel(logging.INFO)
        log.emit("order.sent", cl_ord_id="b")
        assert [r["cl_ord_id"] for r in log.recent()] == ["a", "b"]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
        logging.raiseExceptions = old_raise
