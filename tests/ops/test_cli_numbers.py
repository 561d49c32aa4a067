"""Every numeric option of every command reads numbers one way (:mod:`venueguard.numbers`): ASCII
digits only, finite, inside a range that the refusal states, whether the value comes from the
command line, the environment or the config file."""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from venueguard import cli, config
from venueguard.numbers import FloatArg, IntArg, NumberError, read_float, read_int, url_port

ARABIC_FIVE, WIDE_FIVE = "\u0665", "\uff15"
HOSTILE = st.one_of(
    st.sampled_from(["²", "⑤", ARABIC_FIVE, WIDE_FIVE, "1_000", " 5", "5 ", "+5", "-5", "--5",
                     "1e3", "1E-3", "1e9", "1e999", "-1e999", "nan", "NaN", "inf", "-inf",
                     "Infinity", "0x10", "0", "00", "5.0", ".5", "5.", "1" * 25, "9" * 400,
                     "", "-0", "65535", "65536", "1000000", "1000001", "0.0000001"]),
    st.integers(-10**20, 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.characters(categories=["Nd", "No", "Nl"], min_codepoint=0x80),
    st.text(max_size=10))


def _numeric_options() -> Iterator[tuple[str, argparse.Action]]:
    for command, sub in config.subparsers(cli.build_parser()).items():
        for action in sub._actions:
            if action.option_strings and isinstance(action.type, IntArg | FloatArg):
                yield command, action


OPTIONS = list(_numeric_options())
IDS = [f"{command} {action.option_strings[0]}" for command, action in OPTIONS]


def test_no_option_reads_numbers_with_python_int_or_float() -> None:
    """int() and float() take Unicode digits, '1_0', ' 5', 'nan': every numeric option uses the
    shared readers instead."""
    for command, sub in config.subparsers(cli.build_parser()).items():
        for action in sub._actions:
            assert action.type not in (int, float), (command, action.option_strings)
    names = {name for _, action in OPTIONS for name in action.option_strings}
    assert {"--port", "--rate", "--seed", "--duration", "--fleet-size", "--seeds", "--steps",
            "--first-seed", "--replay-speed", "--rest-limit"} <= names


def _in_range(kind: IntArg | FloatArg, value: float) -> bool:
    if not math.isfinite(value):
        return False
    if kind.low is not None and value < kind.low:
        return False
    if kind.high is not None and value > kind.high:
        return False
    return not (isinstance(kind, FloatArg) and kind.above is not None and value <= kind.above)


@pytest.mark.parametrize(("command", "action"), OPTIONS, ids=IDS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=HOSTILE)
def test_every_numeric_option_takes_a_number_in_range_or_states_the_range(
        command: str, action: argparse.Action, text: str) -> None:
    kind = action.type
    assert isinstance(kind, IntArg | FloatArg)
    option = action.option_strings[0]
    try:
        value = kind(text)
    except argparse.ArgumentTypeError as exc:
        message = str(exc)
        assert message.startswith("must be a "), message
        assert message.endswith(f", not {text!r}") or message.endswith("..."), message
        for bound in (kind.low, kind.high):  # the range is stated (every bound is whole)
            assert bound is None or f" {int(bound)}" in message, message
        return
    assert text.isascii() and text == text.strip(), text
    assert isinstance(value, int if isinstance(kind, IntArg) else float)
    assert _in_range(kind, value), (option, text, value)


@pytest.mark.parametrize(("command", "action"), OPTIONS, ids=IDS)
def test_the_command_line_refusal_is_one_line_naming_the_option(
        command: str, action: argparse.Action, capsys: pytest.CaptureFixture[str]) -> None:
    option = action.option_strings[0]
    argv = [command, *(["journal.db"] if command == "report" else []), option, "²"]
    with pytest.raises(SystemExit) as info:
        cli.build_parser().parse_args(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.endswith(f"error: argument {option}: must be "
                        f"{err.split(': must be ', 1)[1]}") and err.endswith("not '²'"), err
    assert "Traceback" not in err


@pytest.mark.parametrize(("command", "action"), OPTIONS, ids=IDS)
def test_environment_and_file_values_are_checked_the_same_way(
        tmp_path: Path, command: str, action: argparse.Action) -> None:
    option = action.option_strings[0]
    argv = [command, *(["journal.db"] if command == "report" else [])]
    args = cli.build_parser().parse_args(argv)
    variable = config.env_name(command, action.dest)
    with pytest.raises(config.ConfigError, match=rf"{variable}: {action.dest}: must be a "):
        config.resolve(cli.build_parser, args, argv, {variable: "nan"})
    path = tmp_path / "venueguard.toml"
    path.write_text(f'[{command}]\n{action.dest} = "{ARABIC_FIVE}"\n', encoding="utf-8")
    with pytest.raises(config.ConfigError, match=rf":2: {action.dest}: must be a "):
        config.resolve(cli.build_parser, args, argv, {config.CONFIG_ENV: str(path)})
    assert option


@pytest.mark.parametrize(("text", "expected"), [
    ("5", 5), ("-5", -5), ("+5", 5), ("007", 7)])
def test_read_int_accepts_ascii_whole_numbers(text: str, expected: int) -> None:
    assert read_int(text) == expected


@pytest.mark.parametrize("text", ["²", "⑤", ARABIC_FIVE, WIDE_FIVE, " 5", "5\n", "1_0", "5.0",
                                  "1e3", "", "+", "9" * 31])
def test_read_int_refuses_everything_else(text: str) -> None:
    with pytest.raises(NumberError, match=r"^must be a whole number from 1 to 9, not "):
        read_int(text, low=1, high=9)


@pytest.mark.parametrize(("text", "expected"), [
    ("5", 5.0), ("-0.5", -0.5), (".5", 0.5), ("5.", 5.0), ("1e3", 1000.0), ("1E-3", 0.001)])
def test_read_float_accepts_ascii_numbers(text: str, expected: float) -> None:
    assert read_float(text) == expected


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "Infinity", "1e999", ARABIC_FIVE,
                                  WIDE_FIVE, "²", " 1", "1_0", "0x10", "1e", "."])
def test_read_float_refuses_non_finite_and_non_ascii(text: str) -> None:
    with pytest.raises(NumberError, match=r"^must be a number greater than 0 and at most 10, "):
        read_float(text, above=0, high=10)


def test_out_of_range_states_the_range() -> None:
    with pytest.raises(NumberError, match=r"must be a number from 0 to 10, not '11'"):
        read_float("11", low=0, high=10)
    with pytest.raises(NumberError, match=r"must be a whole number of at least 1, not '0'"):
        read_int("0", low=1)


@pytest.mark.parametrize(("url", "expected"), [
    ("http://127.0.0.1:8800/x", 8800), ("http://127.0.0.1", None), ("http://[::1]:80", 80),
    ("redis://user:pw@h:6379/0", 6379), ("http://h:", None)])
def test_url_port_reads_the_written_port(url: str, expected: int | None) -> None:
    assert url_port(url) == expected


@pytest.mark.parametrize("port", ["\u00b2", ARABIC_FIVE, WIDE_FIVE, "+80", "-80", "0", "65536",
                                  "8_0", "9" * 40, "80 "])
def test_url_port_refuses_what_is_not_a_port(port: str) -> None:
    with pytest.raises(NumberError, match=r"^port must be a whole number from 1 to 65535, not "):
        url_port(f"http://127.0.0.1:{port}/")
