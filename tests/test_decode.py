"""`BodyDecoder`: Content-Encoding undone as a stream, never more than a piece at a time."""

from __future__ import annotations

import itertools
import tracemalloc
import zlib
from collections.abc import Generator, Iterable

import pytest
from httpserver import encode_body, gzip_zeros, sample_body

from fetchpool._decode import PIECE_BYTES, BodyDecoder, DecodeError

BODY = sample_body(300_000)


def decode(codings: Iterable[str], data: bytes, *, step: int = 65536, **kwargs: int) -> bytes:
    """Feed `data` in reads of `step` bytes, as a socket would deliver it, then finish."""
    decoder = BodyDecoder(codings, **kwargs)
    out = bytearray()
    for start in range(0, len(data), step):
        for piece in decoder.feed(data[start : start + step]):
            out += piece
    decoder.finish()
    return bytes(out)


@pytest.mark.parametrize(
    ("name", "codings"),
    [
        ("gzip", ["gzip"]),
        ("x-gzip", ["x-gzip"]),
        ("deflate", ["deflate"]),
        ("deflate-raw", ["deflate"]),
        ("gzip-multi", ["gzip"]),
        ("gzip-padded", ["gzip"]),
        ("gzip-gzip", ["gzip", "gzip"]),
        ("deflate-gzip", ["deflate", "gzip"]),
        ("identity", ["identity"]),
    ],
)
@pytest.mark.parametrize("step", [1, 7, 1000, 65536, 10**7])
def test_every_coding_decodes_to_the_original_whatever_the_read_sizes(
    name: str, codings: list[str], step: int
) -> None:
    body = BODY if step > 1 else BODY[:20_000]  # byte by byte: a shorter body
    assert decode(codings, encode_body(name, body), step=step) == body


def test_codings_are_case_insensitive_and_identity_is_skipped() -> None:
    data = encode_body("deflate-gzip", BODY)
    assert decode([" Deflate", "", "IDENTITY", "GZip "], data) == BODY
    assert BodyDecoder([]).identity
    assert BodyDecoder(["identity", ""]).identity
    assert not BodyDecoder(["gzip"]).identity


def test_an_identity_body_passes_through_unchanged() -> None:
    decoder = BodyDecoder([])
    assert list(decoder.feed(b"abc")) == [b"abc"]
    assert list(decoder.feed(b"")) == []
    decoder.finish()


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip;q=1", "x-custom"])
def test_a_coding_it_cannot_decode_is_refused_up_front(coding: str) -> None:
    with pytest.raises(DecodeError) as caught:
        BodyDecoder(["gzip", coding])
    assert str(caught.value) == f"cannot decode Content-Encoding {coding!r}"


@pytest.mark.parametrize("name", ["gzip", "deflate", "deflate-raw", "gzip-gzip", "gzip-multi"])
@pytest.mark.parametrize("fraction", [0.0001, 0.3, 0.6, 0.9999])
def test_a_truncated_body_is_an_error_at_its_end(name: str, fraction: float) -> None:
    whole = encode_body(name, BODY)
    cut = whole[: max(1, int(len(whole) * fraction))]
    decoder = BodyDecoder(["gzip", "gzip"] if name == "gzip-gzip" else [name.split("-")[0]])
    for _ in decoder.feed(cut):
        pass
    with pytest.raises(DecodeError, match=r"^truncated (gzip|deflate) body$"):
        decoder.finish()


def test_an_empty_body_is_an_empty_file_not_an_error() -> None:
    assert decode(["gzip"], b"") == b""
    assert decode(["deflate"], b"") == b""


def test_a_corrupt_body_is_an_error_naming_what_zlib_found() -> None:
    with pytest.raises(DecodeError, match=r"^corrupt gzip body: incorrect data check$"):
        decode(["gzip"], encode_body("gzip-corrupt", BODY))
    with pytest.raises(DecodeError, match=r"^corrupt gzip body: incorrect header check$"):
        decode(["gzip"], BODY)
    with pytest.raises(DecodeError, match=r"^corrupt deflate body: "):
        decode(["deflate"], b"\xff" * 100)


def test_data_after_the_last_gzip_member_must_be_another_member_or_zeros() -> None:
    assert decode(["gzip"], encode_body("gzip", BODY) + bytes(5000), step=1000) == BODY
    with pytest.raises(DecodeError, match=r"^corrupt gzip body: data after the end is not gzip$"):
        decode(["gzip"], encode_body("gzip-trailing", BODY))
    with pytest.raises(DecodeError, match=r"^truncated gzip body$"):
        decode(["gzip"], encode_body("gzip", BODY) + b"\x1f")  # half a magic number


def test_data_after_a_deflate_stream_is_ignored_as_httpx_does() -> None:
    assert decode(["deflate"], zlib.compress(BODY) + b"trailing") == BODY


def test_a_bare_deflate_stream_is_told_from_a_zlib_one_even_a_byte_at_a_time() -> None:
    for data in (zlib.compress(b"x" * 1000), encode_body("deflate-raw", b"x" * 1000)):
        assert decode(["deflate"], data, step=1) == b"x" * 1000


@pytest.mark.parametrize("piece_bytes", [PIECE_BYTES, 4096, 1000, 1])
def test_a_bomb_comes_out_in_pieces_no_larger_than_the_bound(piece_bytes: int) -> None:
    size = 8 * 1024 * 1024 if piece_bytes >= 1000 else 30_000
    decoder = BodyDecoder(["gzip"], piece_bytes=piece_bytes)
    bomb = gzip_zeros(size)
    largest = total = 0
    for start in range(0, len(bomb), 65536):
        for piece in decoder.feed(bomb[start : start + 65536]):
            largest = max(largest, len(piece))
            total += len(piece)
    decoder.finish()
    assert (largest, total) == (piece_bytes, size)


def test_a_stacked_bomb_stays_bounded_in_every_layer() -> None:
    inner = gzip_zeros(64 * 1024 * 1024)
    outer = zlib.compress(inner, 9)
    decoder = BodyDecoder(["gzip", "deflate"])
    sizes = [len(piece) for piece in decoder.feed(outer)]
    decoder.finish()
    assert sum(sizes) == 64 * 1024 * 1024
    assert max(sizes) == PIECE_BYTES


def test_decoding_a_bomb_holds_a_piece_not_the_body() -> None:
    # Each 64 KiB read of it inflates to about 64 MiB: what httpx's decoder returns at once.
    bomb = gzip_zeros(64 * 1024 * 1024)
    decoder = BodyDecoder(["gzip"])
    tracemalloc.start()
    try:
        total = 0
        for start in range(0, len(bomb), 65536):
            total += sum(len(piece) for piece in decoder.feed(bomb[start : start + 65536]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 64 * 1024 * 1024
    # A piece, zlib's output blocks joined into it, a read and its unconsumed tail: ~1 MB.
    assert peak < 8 * PIECE_BYTES


def test_a_caller_that_stops_asking_stops_the_decompression() -> None:
    # A bomb whose checksum is wrong: inflating it to the end would raise.
    bomb = bytearray(gzip_zeros(64 * 1024 * 1024))
    bomb[-5] ^= 0xFF
    whole = bytes(bomb)
    with pytest.raises(DecodeError, match="incorrect data check"):
        decode(["gzip"], whole)
    pieces = BodyDecoder(["gzip"]).feed(whole)  # the whole body in one read
    assert isinstance(pieces, Generator)
    assert [len(p) for p in itertools.islice(pieces, 3)] == [PIECE_BYTES] * 3
    pieces.close()  # no error: zlib never got near the end
