#!/usr/bin/python3
"""Writes the .npy/.npz fixtures of tests/core/test_npy.cpp into tests/data/npy/.

Every file is written by NumPy itself (np.save, np.savez, np.savez_compressed,
np.lib.format.write_array), so the reader is tested against the real producer of the format.
truncated/ holds prefixes of two of those files (version 1.0 and 2.0) cut at every field
boundary of the format (magic, version, header-length field, header, data) and at each of the
last bytes of the header; truncated/truncated.json says, for each, where the cut falls and what
the reader must report, from the lengths in the file (the .npy format specification,
numpy/lib/format.py).
Run: /usr/bin/python3 tools/make_npy_fixtures.py
"""
import json
import os
import struct

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "npy")


def main():
    os.makedirs(OUT, exist_ok=True)
    a = np.arange(12, dtype=np.float64).reshape(3, 4) / 8.0  # 0, 0.125, ..., 1.375
    np.save(os.path.join(OUT, "f8_c.npy"), a)
    np.save(os.path.join(OUT, "f4_c.npy"), a.astype(np.float32))
    np.save(os.path.join(OUT, "f8_fortran.npy"), np.asfortranarray(a))
    np.save(os.path.join(OUT, "f4_fortran.npy"), np.asfortranarray(a.astype(np.float32)))
    np.save(os.path.join(OUT, "f8_bigendian.npy"), a.astype(">f8"))
    np.save(os.path.join(OUT, "f2.npy"), a.astype(np.float16))
    np.save(os.path.join(OUT, "object.npy"), np.array([1, "a", None], dtype=object),
            allow_pickle=True)
    np.save(os.path.join(OUT, "structured.npy"), np.zeros(3, dtype=[("x", "<f4"), ("y", "<i4")]))
    labels = np.array([3, 7, 42, 3], dtype=np.int64)
    for dt in ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]:
        np.save(os.path.join(OUT, f"labels_{dt}.npy"), labels.astype(dt))
    np.save(os.path.join(OUT, "labels_bool.npy"), np.array([True, False, True]))
    np.save(os.path.join(OUT, "labels_f8.npy"), labels.astype(np.float64))
    np.save(os.path.join(OUT, "labels_col.npy"), labels.reshape(-1, 1))
    with open(os.path.join(OUT, "f8_v2.npy"), "wb") as fh:
        np.lib.format.write_array(fh, a, version=(2, 0))
    np.savez(os.path.join(OUT, "stored.npz"), features=a, labels=labels[:3])
    np.savez_compressed(os.path.join(OUT, "compressed.npz"), features=a.astype(np.float32),
                        labels=labels[:3])
    np.savez(os.path.join(OUT, "single.npz"), a)
    np.save(os.path.join(OUT, "scalar.npy"), np.float64(2.5))
    np.save(os.path.join(OUT, "empty_rows.npy"), np.zeros((0, 4), dtype=np.float32))
    np.save(os.path.join(OUT, "zero_cols.npy"), np.zeros((3, 0), dtype=np.float32))
    write_truncated(os.path.join(OUT, "truncated"))
    write_fuzz_boundaries(os.path.join(OUT, "..", "fuzz"))
    print("wrote", sorted(os.listdir(OUT)))


def write_fuzz_boundaries(fuzz):
    """The truncated prefixes as fuzzing regression inputs (tests/data/fuzz): as .npy images for
    the npy and npy_rows targets, and as the member x.npy of a stored .npz for the npz target."""
    import zipfile
    src = os.path.join(OUT, "truncated")
    names = sorted(n for n in os.listdir(src) if n.endswith(".npy"))
    for target in ("npy", "npy_rows"):
        os.makedirs(os.path.join(fuzz, target), exist_ok=True)
        for n in names:
            with open(os.path.join(src, n), "rb") as fh, \
                    open(os.path.join(fuzz, target, "boundary-" + n), "wb") as out:
                out.write(fh.read())
    os.makedirs(os.path.join(fuzz, "npz"), exist_ok=True)
    for n in names:
        if n == "f8_c_cut000.npy":
            continue
        path = os.path.join(fuzz, "npz", "boundary-" + n[:-4] + ".npz")
        with open(os.path.join(src, n), "rb") as fh:
            data = fh.read()
        # fixed timestamp so that re-running gives the same bytes
        info = zipfile.ZipInfo("x.npy", date_time=(1980, 1, 1, 0, 0, 0))
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr(info, data)


def _cuts(offset, header_end, data_end):
    """Prefix lengths: both sides of every field boundary, and every one of the last `offset`
    bytes of the header, where the announced header length still fits in the file even though
    the header does not (offset + header_len > size >= header_len)."""
    cuts = {0, 1, 5, 6, 7, 8, 9, 10, 11, offset - 1, offset, offset + 1, header_end // 2,
            header_end, header_end + 1, header_end + 7, header_end + 8, data_end - 1}
    cuts.update(range(header_end - offset, header_end))
    return sorted(c for c in cuts if 0 <= c < data_end)


def write_truncated(out):
    """Prefixes of f8_c.npy (v1.0) and f8_v2.npy (v2.0), with the outcome each must give."""
    os.makedirs(out, exist_ok=True)
    manifest = {}
    for src in ("f8_c.npy", "f8_v2.npy"):
        with open(os.path.join(OUT, src), "rb") as fh:
            full = fh.read()
        major = full[6]
        offset = 10 if major == 1 else 12
        header_len = (struct.unpack("<H", full[8:10])[0] if major == 1
                      else struct.unpack("<I", full[8:12])[0])
        header_end = offset + header_len
        data_end = len(full)
        assert data_end - header_end == 96  # the 3 x 4 doubles
        for cut in _cuts(offset, header_end, data_end):
            if cut == 0:
                field, expect = "empty", "empty file"
            elif cut < 10:
                field = "magic" if cut <= 6 else ("version" if cut <= 8 else "header_len")
                expect = "not an .npy file (missing the \\x93NUMPY magic)"
            elif cut < offset:  # a 2.0 file cut inside its 4-byte length field
                field, expect = "header_len", "truncated .npy header"
            elif cut < header_end:
                field = "header"
                expect = ("truncated .npy header (%d bytes announced, %d present)"
                          % (header_len, cut - offset))
            else:
                field = "data"
                expect = ("truncated: shape (3, 4) of <f8 needs 96 bytes of data, the file has %d"
                          % (cut - header_end))
            name = "%s_cut%03d.npy" % (src[:-4], cut)
            with open(os.path.join(out, name), "wb") as fh:
                fh.write(full[:cut])
            manifest[name] = {"source": src, "size": cut, "field": field,
                              "header_end": header_end, "expect": expect}
    with open(os.path.join(out, "truncated.json"), "w") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
