"""Pure-Python MessagePack codec, used when the ``msgpack`` module is absent.

rpytest workers must run in any environment that has pytest installed and
nothing else, so the worker cannot depend on ``msgpack``. This module covers
exactly the types the engine <-> worker protocol uses: None, bool, int (up to
64 bits, signed or unsigned), float (always float64), str, bytes, list/tuple
and dict. ``packb`` output is byte-for-byte what
``msgpack.packb(obj, use_bin_type=True)`` produces (tests check this), and
``unpackb`` behaves like ``msgpack.unpackb(data, raw=False)`` for these types
(arrays decode to lists; float32 and every int form are accepted).

Errors: ``packb`` raises TypeError for unsupported types, OverflowError
for ints outside [-2**63, 2**64) and UnicodeEncodeError for a lone surrogate
(unless told ``unicode_errors``, as msgpack is); ``unpackb`` raises ValueError for
malformed, truncated or trailing input (UnicodeDecodeError, a ValueError,
for invalid utf-8).
"""
import struct

__all__ = ["packb", "unpackb"]

_pack_Bb = struct.Struct(">Bb").pack
_pack_Bh = struct.Struct(">Bh").pack
_pack_Bi = struct.Struct(">Bi").pack
_pack_Bq = struct.Struct(">Bq").pack
_pack_BB = struct.Struct(">BB").pack
_pack_BH = struct.Struct(">BH").pack
_pack_BI = struct.Struct(">BI").pack
_pack_BQ = struct.Struct(">BQ").pack
_pack_Bd = struct.Struct(">Bd").pack

# Single-byte headers, precomputed: fixints, fixstr, fixarray, fixmap.
_POSFIX = [bytes((i,)) for i in range(128)]
_NEGFIX = {i: struct.pack(">b", i) for i in range(-32, 0)}
_FIXSTR = [bytes((0xA0 | i,)) for i in range(32)]
_FIXARRAY = [bytes((0x90 | i,)) for i in range(16)]
_FIXMAP = [bytes((0x80 | i,)) for i in range(16)]
_NIL, _FALSE, _TRUE = b"\xc0", b"\xc2", b"\xc3"


def _pack_int(n):
    if n >= 0:
        if n < 0x80:
            return _POSFIX[n]
        if n <= 0xFF:
            return _pack_BB(0xCC, n)
        if n <= 0xFFFF:
            return _pack_BH(0xCD, n)
        if n <= 0xFFFFFFFF:
            return _pack_BI(0xCE, n)
        if n <= 0xFFFFFFFFFFFFFFFF:
            return _pack_BQ(0xCF, n)
    else:
        if n >= -32:
            return _NEGFIX[n]
        if n >= -0x80:
            return _pack_Bb(0xD0, n)
        if n >= -0x8000:
            return _pack_Bh(0xD1, n)
        if n >= -0x80000000:
            return _pack_Bi(0xD2, n)
        if n >= -0x8000000000000000:
            return _pack_Bq(0xD3, n)
    raise OverflowError("Integer value out of range")


def _pack(obj, out, errors):
    t = type(obj)
    if t is str:
        b = obj.encode("utf-8", errors)
        n = len(b)
        if n < 32:
            out.append(_FIXSTR[n])
        elif n <= 0xFF:
            out.append(_pack_BB(0xD9, n))
        elif n <= 0xFFFF:
            out.append(_pack_BH(0xDA, n))
        elif n <= 0xFFFFFFFF:
            out.append(_pack_BI(0xDB, n))
        else:
            raise ValueError("str is too large")
        out.append(b)
    elif t is dict:
        n = len(obj)
        if n < 16:
            out.append(_FIXMAP[n])
        elif n <= 0xFFFF:
            out.append(_pack_BH(0xDE, n))
        elif n <= 0xFFFFFFFF:
            out.append(_pack_BI(0xDF, n))
        else:
            raise ValueError("dict is too large")
        for k, v in obj.items():
            _pack(k, out, errors)
            _pack(v, out, errors)
    elif t is int:
        out.append(_pack_int(obj))
    elif obj is None:
        out.append(_NIL)
    elif t is bool:
        out.append(_TRUE if obj else _FALSE)
    elif t is float:
        out.append(_pack_Bd(0xCB, obj))
    elif t is list or t is tuple:
        n = len(obj)
        if n < 16:
            out.append(_FIXARRAY[n])
        elif n <= 0xFFFF:
            out.append(_pack_BH(0xDC, n))
        elif n <= 0xFFFFFFFF:
            out.append(_pack_BI(0xDD, n))
        else:
            raise ValueError("list is too large")
        for item in obj:
            _pack(item, out, errors)
    elif t is bytes or t is bytearray:
        n = len(obj)
        if n <= 0xFF:
            out.append(_pack_BB(0xC4, n))
        elif n <= 0xFFFF:
            out.append(_pack_BH(0xC5, n))
        elif n <= 0xFFFFFFFF:
            out.append(_pack_BI(0xC6, n))
        else:
            raise ValueError("bytes is too large")
        out.append(bytes(obj))
    else:
        # Subclasses (IntEnum, namedtuple, OrderedDict, ...) pack as their
        # base type, as msgpack does.
        for base in (int, float, str, bytes, dict, list, tuple):
            if isinstance(obj, base):
                return _pack(base(obj), out, errors)
        raise TypeError(f"can not serialize {t.__name__!r} object")


def packb(obj, unicode_errors="strict"):
    """Serialize ``obj`` to MessagePack bytes; ``unicode_errors`` as msgpack's
    (the error handler for strings UTF-8 cannot encode)."""
    out = []
    _pack(obj, out, unicode_errors)
    return b"".join(out)


# ---------------------------------------------------------------- decoding

_unpack_b = struct.Struct(">b").unpack_from
_unpack_h = struct.Struct(">h").unpack_from
_unpack_i = struct.Struct(">i").unpack_from
_unpack_q = struct.Struct(">q").unpack_from
_unpack_B = struct.Struct(">B").unpack_from
_unpack_H = struct.Struct(">H").unpack_from
_unpack_I = struct.Struct(">I").unpack_from
_unpack_Q = struct.Struct(">Q").unpack_from
_unpack_f = struct.Struct(">f").unpack_from
_unpack_d = struct.Struct(">d").unpack_from

# Fixed-width scalars: type byte -> (unpacker, width).
_SCALARS = {
    0xCA: (_unpack_f, 4), 0xCB: (_unpack_d, 8),
    0xCC: (_unpack_B, 1), 0xCD: (_unpack_H, 2),
    0xCE: (_unpack_I, 4), 0xCF: (_unpack_Q, 8),
    0xD0: (_unpack_b, 1), 0xD1: (_unpack_h, 2),
    0xD2: (_unpack_i, 4), 0xD3: (_unpack_q, 8),
}
# Length-prefixed types: type byte -> (kind, length unpacker, width).
_SIZED = {
    0xC4: ("bin", _unpack_B, 1), 0xC5: ("bin", _unpack_H, 2),
    0xC6: ("bin", _unpack_I, 4),
    0xD9: ("str", _unpack_B, 1), 0xDA: ("str", _unpack_H, 2),
    0xDB: ("str", _unpack_I, 4),
    0xDC: ("array", _unpack_H, 2), 0xDD: ("array", _unpack_I, 4),
    0xDE: ("map", _unpack_H, 2), 0xDF: ("map", _unpack_I, 4),
}


def _need(data, pos, n):
    if pos + n > len(data):
        raise ValueError("truncated MessagePack data")


def _unpack(data, pos):
    """Decode one object at ``pos``; return (object, next position)."""
    _need(data, pos, 1)
    b = data[pos]
    pos += 1
    if b <= 0x7F:
        return b, pos
    if b >= 0xE0:
        return b - 0x100, pos
    if 0xA0 <= b <= 0xBF:
        kind, n = "str", b & 0x1F
    elif 0x90 <= b <= 0x9F:
        kind, n = "array", b & 0x0F
    elif 0x80 <= b <= 0x8F:
        kind, n = "map", b & 0x0F
    elif b == 0xC0:
        return None, pos
    elif b == 0xC2:
        return False, pos
    elif b == 0xC3:
        return True, pos
    elif b in _SCALARS:
        unpack, width = _SCALARS[b]
        _need(data, pos, width)
        return unpack(data, pos)[0], pos + width
    elif b in _SIZED:
        kind, unpack, width = _SIZED[b]
        _need(data, pos, width)
        n = unpack(data, pos)[0]
        pos += width
    else:
        raise ValueError(f"unsupported MessagePack type byte 0x{b:02x}")

    if kind == "str" or kind == "bin":
        _need(data, pos, n)
        raw = data[pos:pos + n]
        return (raw.decode("utf-8") if kind == "str" else raw), pos + n
    # Each element takes at least one byte: reject absurd counts early.
    _need(data, pos, n if kind == "array" else 2 * n)
    if kind == "array":
        items = []
        for _ in range(n):
            item, pos = _unpack(data, pos)
            items.append(item)
        return items, pos
    result = {}
    for _ in range(n):
        key, pos = _unpack(data, pos)
        value, pos = _unpack(data, pos)
        try:
            result[key] = value
        except TypeError:
            raise ValueError(f"unhashable map key of type {type(key).__name__}") from None
    return result, pos


def unpackb(data):
    """Deserialize exactly one MessagePack object from ``data``."""
    data = bytes(data)
    obj, pos = _unpack(data, 0)
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} trailing bytes after MessagePack object")
    return obj
