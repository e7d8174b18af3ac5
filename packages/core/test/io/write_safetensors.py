"""Write a safetensors file with only the Python standard library (json + struct).

An independent writer of the format (huggingface/safetensors: u64 LE header length, JSON header
padded with spaces to a multiple of 8, tensors contiguous, ordered as the reference serializer
orders them: dtype enum rank descending, then name by UTF-8 bytes). Used by safetensors.test.ts
as an interop check; the real PyTorch safetensors package is not installed on this machine.

usage: python3 write_safetensors.py OUT_MIXED OUT_WRITABLE
  OUT_MIXED     many dtypes (F64, I64, F32, I32, BF16, F16, U8, I8, BOOL) plus metadata
  OUT_WRITABLE  only F32 / I32 / BOOL / U8, the dtypes the TypeScript writer emits
"""
import json
import struct
import sys

# The reference Dtype enum order (increasing alignment).
ORDER = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
         "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
         "C64", "F64", "I64", "U64"]
FMT = {"F64": "d", "I64": "q", "F32": "f", "I32": "i", "F16": "e", "U8": "B", "I8": "b", "BOOL": "?"}


def pack(dtype, values):
    if dtype == "BF16":
        # bfloat16 = the top 16 bits of the float32 (values chosen exactly representable)
        return b"".join(struct.pack("<I", v)[2:] for v in (struct.unpack("<I", struct.pack("<f", x))[0] for x in values))
    return struct.pack("<%d%s" % (len(values), FMT[dtype]), *values)


def write(path, tensors, metadata=None):
    items = sorted(tensors.items(), key=lambda kv: (-ORDER.index(kv[1][0]), kv[0].encode("utf-8")))
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    blobs = []
    offset = 0
    for name, (dtype, shape, values) in items:
        blob = pack(dtype, values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    hb = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for blob in blobs:
            f.write(blob)


mixed = {
    "f64": ("F64", [3], [0.5, -1.25, 1e10]),
    "i64": ("I64", [2, 2], [0, -1, 2147483647, -2147483648]),
    "layer.weight": ("F32", [2, 3], [0.0, 1.0, -2.0, 3.5, 1e-8, -0.0]),
    "ids": ("I32", [4], [7, -7, 0, 123456]),
    "bf16": ("BF16", [3], [1.0, -2.5, 0.15625]),
    "f16": ("F16", [4], [1.0, -0.5, 65504.0, 2.0 ** -24]),
    "u8": ("U8", [3], [0, 128, 255]),
    "i8": ("I8", [3], [-128, 0, 127]),
    "mask": ("BOOL", [2], [True, False]),
    "empty": ("F32", [0, 4], []),
}
writable = {
    "b": ("F32", [1, 2], [1.0, -2.5]),
    "a": ("I32", [2], [1, -2]),
    "c": ("F32", [0], []),
    "m": ("BOOL", [3], [True, False, True]),
    "bits": ("U8", [3], [0, 171, 255]),
    "\u00e9t\u00e9": ("F32", [1], [0.25]),
}
write(sys.argv[1], mixed, {"format": "pt", "source": "write_safetensors.py"})
write(sys.argv[2], writable, {"format": "pt"})
