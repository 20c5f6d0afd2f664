"""Fossil deltas: the encoding of Centrifugo's delta compression (``delta: "fossil"``).

A delta turns the data of one publication into the next one's. It is the format of
Fossil SCM's ``delta.c`` (https://fossil-scm.org/home/doc/tip/www/delta_format.wiki),
which centrifuge-js (``applyDelta``) and centrifuge-python (``fossil.apply_delta``) decode,
and which Centrifuge creates with the ``fossil-delta`` Go port. The PyPI ports of it were last
released in 2017 and 2018, so wavecast keeps its own: :func:`create` below, tested against
both SDKs' decoders, and :func:`apply`, the decoder the tests and the benchmarks use.
"""

from __future__ import annotations

import sys
from array import array

__all__ = ["apply", "checksum", "create"]

#: Bytes hashed to find a copy in the source; a source this short gives a plain insert.
_NHASH = 16
#: Candidate blocks tried per hash: bounds the time spent on a pathological source.
_SEARCH_LIMIT = 250
_DIGITS = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"
_VALUES = {digit: value for value, digit in enumerate(_DIGITS)}


def _put_int(value: int) -> bytes:
    """A number in the delta's base-64 digits, most significant first."""
    if value == 0:
        return b"0"
    digits = bytearray()
    while value > 0:
        digits.append(_DIGITS[value & 0x3F])
        value >>= 6
    digits.reverse()
    return bytes(digits)


def _digit_count(value: int) -> int:
    count, limit = 1, 64
    while value >= limit:
        count += 1
        limit <<= 6
    return count


def checksum(data: bytes) -> int:
    """The delta's checksum of its output: the sum of its big-endian 32-bit words, zero-padded."""
    padded = data + b"\0" * (-len(data) % 4)
    words = array("I", padded)
    if sys.byteorder == "little":
        words.byteswap()
    return sum(words) & 0xFFFFFFFF


def create(source: bytes, target: bytes) -> bytes:
    """Return a delta that turns ``source`` into ``target`` (Fossil's ``delta_create``).

    Blocks of 16 bytes of the source are indexed by a rolling hash; the target is scanned
    with the same hash, and each candidate match is extended both ways and kept when it
    is longer than the copy command that names it.
    """
    out = [_put_int(len(target)), b"\n"]
    len_src, len_out = len(source), len(target)
    if len_src <= _NHASH:
        if len_out:
            out += [_put_int(len_out), b":", target]
        out += [_put_int(checksum(target)), b";"]
        return b"".join(out)
    n_hash = len_src // _NHASH
    collide = [-1] * n_hash
    landmark = [-1] * n_hash
    for i in range(0, len_src - _NHASH, _NHASH):
        a, b = _hash(source, i)
        hv = ((a & 0xFFFF) | ((b & 0xFFFF) << 16)) % n_hash
        block = i // _NHASH
        collide[block] = landmark[hv]
        landmark[hv] = block
    base = 0
    while base + _NHASH < len_out:
        a, b = _hash(target, base)
        i = 0
        best_count = best_offset = best_literal = 0
        while True:
            hv = ((a & 0xFFFF) | ((b & 0xFFFF) << 16)) % n_hash
            block = landmark[hv]
            limit = _SEARCH_LIMIT
            while block >= 0 and limit > 0:
                limit -= 1
                src = block * _NHASH
                # Extend the match forward, then backward from where it was found.
                j = 0
                x, y = src, base + i
                while x < len_src and y < len_out and source[x] == target[y]:
                    j += 1
                    x += 1
                    y += 1
                j -= 1
                k = 1
                while k < src and k <= i and source[src - k] == target[base + i - k]:
                    k += 1
                k -= 1
                count = j + k + 1
                # A copy costs at least 6 bytes of the delta (three numbers, ":", "@" and ","):
                # a shorter match, the usual candidate, can't pay for itself.
                if count >= 6 and count > best_count:
                    offset = src - k
                    literal = i - k
                    size = _digit_count(literal) + _digit_count(count) + _digit_count(offset) + 3
                    if count >= size:
                        best_count, best_offset, best_literal = count, offset, literal
                block = collide[block]
            if best_count > 0:
                if best_literal > 0:
                    out += [_put_int(best_literal), b":", target[base : base + best_literal]]
                    base += best_literal
                out += [_put_int(best_count), b"@", _put_int(best_offset), b","]
                base += best_count
                break
            if base + i + _NHASH >= len_out:
                out += [_put_int(len_out - base), b":", target[base:]]
                base = len_out
                break
            # Roll the hash one byte on.
            old, new = target[base + i], target[base + i + _NHASH]
            a = (a - old + new) & 0xFFFF
            b = (b - _NHASH * old + a) & 0xFFFF
            i += 1
    if base < len_out:
        out += [_put_int(len_out - base), b":", target[base:]]
    out += [_put_int(checksum(target)), b";"]
    return b"".join(out)


def _hash(data: bytes, start: int) -> tuple[int, int]:
    a = b = data[start]
    for i in range(start + 1, start + _NHASH):
        a += data[i]
        b += a
    return a & 0xFFFF, b & 0xFFFF


def _get_int(delta: bytes, pos: int) -> tuple[int, int]:
    value = 0
    while pos < len(delta):
        digit = _VALUES.get(delta[pos])
        if digit is None:
            break
        value = (value << 6) + digit
        pos += 1
    return value, pos


def apply(source: bytes, delta: bytes) -> bytes:
    """Apply a delta to ``source`` and return the target (Fossil's ``delta_apply``).

    Raises:
        ValueError: the delta is malformed, doesn't fit ``source``, or its checksum fails.
    """
    limit, pos = _get_int(delta, 0)
    if delta[pos : pos + 1] != b"\n":
        raise ValueError("size integer not terminated by '\\n'")
    pos += 1
    out = bytearray()
    while pos < len(delta):
        count, pos = _get_int(delta, pos)
        operator = delta[pos : pos + 1]
        pos += 1
        if operator == b"@":
            offset, pos = _get_int(delta, pos)
            if delta[pos : pos + 1] != b",":
                raise ValueError("copy command not terminated by ','")
            pos += 1
            if len(out) + count > limit:
                raise ValueError("copy exceeds output file size")
            if offset + count > len(source):
                raise ValueError("copy extends past end of input")
            out += source[offset : offset + count]
        elif operator == b":":
            if len(out) + count > limit:
                raise ValueError("insert command gives an output larger than predicted")
            if pos + count > len(delta):
                raise ValueError("insert count exceeds size of delta")
            out += delta[pos : pos + count]
            pos += count
        elif operator == b";":
            if count != checksum(bytes(out)):
                raise ValueError("bad checksum")
            if len(out) != limit:
                raise ValueError("generated size does not match predicted size")
            return bytes(out)
        else:
            raise ValueError("unknown delta operator")
    raise ValueError("unterminated delta")
