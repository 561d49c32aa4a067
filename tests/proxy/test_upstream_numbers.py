"""The numbers of an upstream's answer (status code, Content-Length, chunk sizes) are read as
ASCII digits only: ``int()`` took ``'²'`` for a digit and then refused it, and took Arabic-Indic
digits, ``' 5'`` or ``'1_0'`` as lengths. A malformed answer is refused (the proxy answers 502),
never read at a length the upstream did not write."""

from __future__ import annotations

import asyncio

import pytest

from venueguard.proxy.upstream import _body, _head


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def test_a_plain_answer_head_is_read() -> None:
    status, reason, headers, keep = _head(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
    assert (status, reason, headers, keep) == (200, "OK", [("Content-Length", "2")], True)


@pytest.mark.parametrize("code", ["\u00b2\u00b2\u00b2", "\u0662\u0660\u0660", "+20", " 20",
                                  "2_0", "20", "2000"])
def test_a_status_code_is_three_ascii_digits(code: str) -> None:
    with pytest.raises(ValueError, match="malformed status line"):
        _head(f"HTTP/1.1 {code} OK\r\n\r\n".encode("latin-1", "replace"))


async def test_a_content_length_is_ascii_digits() -> None:
    body, keep = await _body(_reader(b"hello"), "GET", 200, [("Content-Length", "5")])
    assert (body, keep) == (b"hello", True)
    for length in ("\u0665", "+5", " 5", "5_0", "-1", "5.0", "", "9" * 30):
        with pytest.raises(ValueError, match="bad content-length"):
            await _body(_reader(b"hello"), "GET", 200, [("Content-Length", length)])


async def test_a_chunk_size_is_plain_hex() -> None:
    chunked = [("Transfer-Encoding", "chunked")]
    body, _ = await _body(_reader(b"5\r\nhello\r\n0\r\n\r\n"), "GET", 200, chunked)
    assert body == b"hello"
    for size in (b"0x5", b"+5", b"5_0", b"-5", b"\xd9\xa5", b""):
        with pytest.raises(ValueError, match="bad chunk size"):
            await _body(_reader(size + b"\r\nhello\r\n0\r\n\r\n"), "GET", 200, chunked)
