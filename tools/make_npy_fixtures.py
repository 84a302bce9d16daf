#!/usr/bin/python3
"""Writes the .npy/.npz fixtures of tests/core/test_npy.cpp into tests/data/npy/.

Every file is written by NumPy itself (np.save, np.savez, np.savez_compressed,
np.lib.format.write_array), so the reader is tested against the real producer of the format.
Run: /usr/bin/python3 tools/make_npy_fixtures.py
"""
import os

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
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
