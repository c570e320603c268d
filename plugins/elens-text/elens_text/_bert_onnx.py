"""The MiniLM sentence encoder as an ONNX graph, run by ONNX Runtime.

Why: on one CPU thread, ONNX Runtime's own matrix kernels run this model's small
matrix products about twice as fast as torch (whose MKL kernels are slow on some
CPUs, AMD among them), and it needs no torch at all. The graph is built here, in
memory, from the package's ``config.json`` and ``model.safetensors`` (nothing is
exported, downloaded or cached on disk); it computes BERT's last hidden states, then
their mean over the tokens and the L2 normalisation, so one ``run`` gives sentence
embeddings. Texts of near token counts share a run, padded to the longest of them and
masked (see :func:`runs`). The test compares the embeddings with transformers'
``BertModel``.

Only a plain BERT encoder (absolute positions, GELU) is built; anything else raises
:class:`UnsupportedModel` so the caller can fall back to transformers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

from ._bert import UnsupportedModel, plain_bert_config

OPSET = 20  # Gelu is an ONNX op from opset 20
#: what one more run costs, in padded tokens: on one CPU thread a run of this model
#: costs about 3.6 ms whatever its length (its 42 MB of weights are read again), each
#: token about 0.35 ms more
RUN_TOKENS = 10
#: the int8 engine's weights lie in [-63, 63] (see ``_graph``)
INT8_WEIGHT_MAX = 63


def _threads() -> int:
    """ONNX Runtime's intra-op threads: ``OMP_NUM_THREADS`` when set (as torch
    reads it, and as batch workers set it), else its own default (0)."""
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0


def _graph(weights: dict[str, Any], cfg: dict[str, Any], int8: bool = False) -> tuple[bytes, dict[str, Any]]:
    """The serialised graph, and the arrays of its external initializers by name.

    ``int8``: the encoder's dense layers (nine tenths of its arithmetic) multiply in 8-bit
    integers: each weight column is scaled to [-63, 63] and rounded here, each layer's
    input is quantized as it arrives (ONNX Runtime's ``DynamicQuantizeMatMul``). About
    twice as fast on one AVX2 core, three times with VNNI; embeddings move by a cosine
    of 0.97-0.995 (plugins/elens-text/README.md has what that does to the checks)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    hidden = int(cfg["hidden_size"])
    heads = int(cfg["num_attention_heads"])
    eps = float(cfg.get("layer_norm_eps", 1e-12))
    nodes: list[Any] = []
    inits: list[Any] = []
    external: dict[str, Any] = {}

    def const(name: str, value: Any) -> str:
        value = np.ascontiguousarray(value)
        if value.size < 64:
            inits.append(numpy_helper.from_array(value, name))
            return name
        # Weights stay out of the protobuf (copying 90 MB through it costs half a
        # second): the graph names them, the session gets the arrays themselves.
        tensor = TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(value.dtype), dims=value.shape,
                             data_location=TensorProto.EXTERNAL)
        tensor.external_data.add(key="location", value="memory")
        inits.append(tensor)
        external[name] = value
        return name

    def op(kind: str, inputs: Sequence[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def dense(x: str, prefix: str, out: str) -> str:
        # MatMul by the transposed weight, as nn.Linear
        weight = weights[prefix + ".weight"].T.astype("float32")
        b = const(prefix + ".b", weights[prefix + ".bias"].astype("float32"))
        if int8:
            # symmetric per output column: zero stays zero, each column keeps its own range.
            # Seven bits, not eight: without VNNI, x86 multiplies 8-bit pairs into a
            # saturating 16-bit sum (255 * 127 * 2 overflows it, 255 * 63 * 2 does not), so
            # full-range weights would give other embeddings on an AVX2 CPU than on one
            # with VNNI or on ARM; the eighth bit bought a cosine of 0.0004 to the float model
            scale = np.maximum(np.abs(weight).max(axis=0), 1e-12) / INT8_WEIGHT_MAX
            q = const(prefix + ".q", np.clip(np.rint(weight / scale), -INT8_WEIGHT_MAX, INT8_WEIGHT_MAX).astype("int8"))
            sc = const(prefix + ".s", scale.astype("float32"))
            zp = const(prefix + ".z", np.zeros(weight.shape[1], dtype="int8"))
            nodes.append(helper.make_node("DynamicQuantizeMatMul", [x, q, sc, zp, b], [out], domain="com.microsoft"))
            return out
        w = const(prefix + ".w", weight)
        return op("Add", [op("MatMul", [x, w], out + ".mm"), b], out)

    def norm(x: str, prefix: str, out: str) -> str:
        g = const(prefix + ".g", weights[prefix + ".weight"].astype("float32"))
        b = const(prefix + ".b", weights[prefix + ".bias"].astype("float32"))
        return op("LayerNormalization", [x, g, b], out, axis=-1, epsilon=eps)

    e = "embeddings."
    const("word", weights[e + "word_embeddings.weight"].astype("float32"))
    const("pos", weights[e + "position_embeddings.weight"].astype("float32"))
    const("type0", weights[e + "token_type_embeddings.weight"][0].astype("float32"))
    const("zero_axis", np.array([0], dtype="int64"))
    const("axis1", np.array([1], dtype="int64"))
    const("head_shape", np.array([0, 0, heads, hidden // heads], dtype="int64"))
    const("ctx_shape", np.array([0, 0, hidden], dtype="int64"))
    const("scale", np.array(1.0 / math.sqrt(hidden // heads), dtype="float32"))

    # the first `tokens` position embeddings (a 1-D length: ONNX Runtime's fusions
    # stumble over a scalar one)
    length = op("Shape", ["ids"], "length", start=1, end=2)
    pe = op("Slice", ["pos", "zero_axis", length, "zero_axis"], "pe")
    x = op("Add", [op("Add", [op("Gather", ["word", "ids"], "tok"), pe], "tp"), "type0"], "emb")
    x = norm(x, e + "LayerNorm", "x0")
    # a padded position adds -10000 to every attention score towards it, and nothing
    # to the pooled sum
    const("neg", np.array(-10000.0, dtype="float32"))
    const("one", np.array(1.0, dtype="float32"))
    const("axes12", np.array([1, 2], dtype="int64"))
    const("last_axis", np.array([-1], dtype="int64"))
    mask = op("Cast", ["mask"], "maskf", to=TensorProto.FLOAT)
    op("Unsqueeze", [op("Mul", [op("Sub", ["one", mask], "unmasked"), "neg"], "bias2"), "axes12"], "bias")
    for i in range(int(cfg["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        # one product for query, key and value, split along the features
        for part in ("weight", "bias"):
            weights[p + f"attention.self.qkv.{part}"] = np.concatenate(
                [weights[p + f"attention.self.{n}.{part}"] for n in ("query", "key", "value")])
        qkv = dense(x, p + "attention.self.qkv", f"l{i}.qkv")
        nodes.append(helper.make_node("Split", [qkv], [f"l{i}.{n}" for n in "qkv"], axis=-1, num_outputs=3))
        # batch x heads x tokens x features; the key transposed for the product
        q, k, v = (op("Transpose", [op("Reshape", [f"l{i}.{n}", "head_shape"], f"l{i}.{n}4")], f"l{i}.{n}T",
                      perm=[0, 2, 3, 1] if n == "k" else [0, 2, 1, 3]) for n in "qkv")
        scores = op("MatMul", [q, k], f"l{i}.qk")
        scores = op("Add", [op("Mul", [scores, "scale"], f"l{i}.scaled"), "bias"], f"l{i}.scores")
        ctx = op("MatMul", [op("Softmax", [scores], f"l{i}.att", axis=-1), v], f"l{i}.ctx4")
        ctx = op("Reshape", [op("Transpose", [ctx], f"l{i}.ctxT", perm=[0, 2, 1, 3]), "ctx_shape"], f"l{i}.ctx")
        att = dense(ctx, p + "attention.output.dense", f"l{i}.ao")
        x = norm(op("Add", [att, x], f"l{i}.res1"), p + "attention.output.LayerNorm", f"l{i}.x1")
        ff = op("Gelu", [dense(x, p + "intermediate.dense", f"l{i}.in")], f"l{i}.gelu")
        ff = dense(ff, p + "output.dense", f"l{i}.out")
        x = norm(op("Add", [ff, x], f"l{i}.res2"), p + "output.LayerNorm", f"l{i}.x2")
    # mean over the unpadded tokens, then unit length (sentence-transformers' pooling):
    # a sum has the mean's direction
    pooled = op("ReduceSum", [op("Mul", [x, op("Unsqueeze", [mask, "last_axis"], "mask3")], "kept"), "axis1"],
                "pooled", keepdims=0)
    op("LpNormalization", [pooled], "embedding", axis=-1, p=2)
    graph = helper.make_graph(
        nodes, "minilm",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "tokens"]),
         helper.make_tensor_value_info("mask", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        inits,
    )
    # IR version 9 (ONNX 1.15, which brought opset 20): what onnxruntime 1.17, the
    # first with opset 20, reads, whatever onnx package built the graph
    opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid("com.microsoft", 1)] if int8 else [])
    model = helper.make_model(graph, opset_imports=opsets, ir_version=9)
    return model.SerializeToString(), external


class OnnxEncoder:
    """``encoder(texts, batch_size)`` -> (texts x hidden) float32 sentence embeddings, unit length."""

    def __init__(self, path: str | Path, max_length: int = 128, int8: bool = False):
        import onnxruntime
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        path = Path(path)
        cfg = plain_bert_config(path)
        weights = {k.removeprefix("bert."): v for k, v in load_file(str(path / "model.safetensors")).items()}
        try:
            # kept: the session reads these arrays in place, it does not copy them
            model, self._weights = _graph(weights, cfg, int8)
        except KeyError as exc:
            raise UnsupportedModel(f"{path}: missing weight {exc}") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = _threads()
        options.inter_op_num_threads = 1
        names = list(self._weights)
        options.add_external_initializers(
            names, [onnxruntime.OrtValue.ortvalue_from_numpy(self._weights[n]) for n in names])
        self.session = onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        self.max_length = min(max_length, int(cfg.get("max_position_embeddings", max_length)))
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.no_padding()
        self.hidden = int(cfg["hidden_size"])
        # int8 quantizes each layer's input by the range of the whole run: texts sharing
        # a run would move each other's embeddings (by a cosine of up to 0.012), and a
        # prompt's findings would depend on the batch it came in. Each text runs alone
        # (and embed.INT8_FORMAT says so: change it with this).
        self.one_per_run = int8

    def __call__(self, texts: Sequence[str], batch_size: int = 64) -> Any:
        import numpy as np

        encs = self.tokenizer.encode_batch(list(texts))
        out = np.empty((len(texts), self.hidden), dtype="float32")
        for rows in runs([len(e.ids) for e in encs], 1 if self.one_per_run else batch_size):
            width = max(len(encs[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype="int64")  # padding is masked: any id will do
            mask = np.zeros((len(rows), width), dtype="int64")
            for k, i in enumerate(rows):
                ids[k, :len(encs[i].ids)] = encs[i].ids
                mask[k, :len(encs[i].ids)] = 1
            out[rows] = self.session.run(["embedding"], {"ids": ids, "mask": mask})[0]
        return out


def runs(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """The texts (indices into ``lengths``, their token counts) that go through the
    model together, at most ``batch_size`` a run, for the least cost in padded tokens
    plus ``RUN_TOKENS`` a run.

    On a CPU a padded token costs as much as a real one, so only near lengths share a
    run: the two views of a disguised prompt (12 and 14 tokens) go together, a
    3-token text does not wait for a 60-token one. The texts are taken in order of
    length and cut where the cost is least (an exact search: the best cut of a sorted
    list is into runs of consecutive texts)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n = len(order)
    best = [0.0] + [math.inf] * n  # best[j]: least cost of the first j texts
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = lengths[order[j - 1]]
        for i in range(max(0, j - batch_size), j):
            cost = best[i] + RUN_TOKENS + (j - i) * longest
            if cost < best[j]:
                best[j], cut[j] = cost, i
    out: list[list[int]] = []
    j = n
    while j:
        out.append(order[cut[j]:j])
        j = cut[j]
    return out[::-1]
