"""A GGUF file rewritten with its quantized tensors dequantized, then stored as BF16 (or F16, Q8_0).

    python bench/gguf_rewrite.py IN.gguf OUT.gguf [BF16|F16|Q8_0]

For ``bench/bench_llamacpp.py --gguf OUT.gguf``: llama.cpp on the same weights the transformers
backend runs (the embedded Q4_1 file dequantized), without Q4_1's arithmetic. Metadata (tokenizer,
chat template, architecture) is copied as it is; 1-D tensors (norms) stay F32.
"""

from __future__ import annotations

import sys

import gguf
import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFWriter
from gguf.quants import dequantize, quantize

src, dst, kind = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else "BF16")
target = getattr(Q, kind)
r = GGUFReader(src)
arch = r.fields["general.architecture"]
arch = bytes(arch.parts[arch.data[0]]).decode()
w = GGUFWriter(dst, arch)
for name, field in r.fields.items():
    if name.startswith("GGUF.") or name == "general.architecture":
        continue
    if name == "general.file_type":
        continue
    vtype = field.types[0]
    if vtype == gguf.GGUFValueType.ARRAY:
        sub = field.types[1]
        if sub == gguf.GGUFValueType.STRING:
            val = [bytes(field.parts[i]).decode("utf-8", errors="surrogateescape") for i in field.data]
        else:
            val = [field.parts[i].tolist()[0] for i in field.data]
        w.add_key_value(name, val, vtype, sub_type=sub)
    elif vtype == gguf.GGUFValueType.STRING:
        w.add_key_value(name, bytes(field.parts[field.data[0]]).decode("utf-8", errors="surrogateescape"), vtype)
    else:
        w.add_key_value(name, field.parts[field.data[0]].tolist()[0], vtype)
w.add_file_type({"BF16": gguf.LlamaFileType.MOSTLY_BF16, "F16": gguf.LlamaFileType.MOSTLY_F16,
                 "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[kind])
for t in r.tensors:
    data = dequantize(t.data, t.tensor_type).astype(np.float32)  # logical shape, numpy order
    if t.tensor_type in (Q.F32,) or data.ndim == 1:
        w.add_tensor(t.name, data, raw_dtype=Q.F32)
    else:
        q = quantize(data, target)
        w.add_tensor(t.name, q, raw_shape=q.shape if target != Q.BF16 else None, raw_dtype=target)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print("wrote", dst)
