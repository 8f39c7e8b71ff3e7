"""Resemblyzer's voice encoder (PyPI Resemblyzer 0.1.4, Apache-2.0) as ONNX, without torch.

    python resemblyzer_to_onnx.py pretrained.pt voice.onnx

`pretrained.pt` is a checkpoint in torch's legacy (pre-1.6) format: a sequence of pickles
followed by the raw storages. It is read here with Python's own pickle (no torch, no code
from the file runs: only the few names below are let through). The network
(`resemblyzer/voice_encoder.py`): a 3-layer LSTM (40 mel channels -> 256), the last layer's
final hidden state through Linear(256, 256) and ReLU. The ONNX graph takes one partial
utterance, mels [1, 160, 40] (160 frames of 10 ms, not log-scaled), and gives the
embedding before its L2 normalisation, [1, 256] (Ketang normalises, guarding a zero vector).

Then it checks the graph (onnxruntime) against a plain numpy LSTM written from PyTorch's
documented equations on the checkpoint's own gate order, so a mistake in the reordering
for ONNX (PyTorch i,f,g,o -> ONNX i,o,f,c) cannot hide.
"""
import pickle
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FRAMES, MELS, HIDDEN, LAYERS = 160, 40, 256, 3


class _Storage:
    def __init__(self, key, numel):
        self.key, self.numel, self.data = key, numel, None


class _StateDict(dict):
    """An OrderedDict's place: keeps the `_metadata` attribute torch sets on it."""


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self):
        base = self.storage.data
        item = base.itemsize
        return np.lib.stride_tricks.as_strided(
            base[self.offset:], shape=self.size, strides=[s * item for s in self.stride]
        ).copy()


def _rebuild_tensor_v2(storage, offset, size, stride, *_):
    return _Tensor(storage, offset, tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
    ALLOWED = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("collections", "OrderedDict"): _StateDict,
        ("torch", "FloatStorage"): "float32",
    }

    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"pretrained.pt names {module}.{name}, not expected")
        return self.ALLOWED[(module, name)]

    def persistent_load(self, pid):
        kind, dtype, key, _location, numel = pid[:5]
        if kind != "storage" or dtype != "float32":
            raise pickle.UnpicklingError(f"unexpected storage {pid!r}")
        return self.storages.setdefault(key, _Storage(key, numel))


def load_state(path):
    storages = {}
    with open(path, "rb") as f:
        for _ in range(3):  # magic number, protocol version, system info
            pickle.load(f)
        checkpoint = _Unpickler(f, storages).load()
        keys = pickle.load(f)
        for key in keys:
            (numel,) = struct.unpack("<q", f.read(8))
            s = storages[key]
            if numel != s.numel:
                raise ValueError(f"storage {key}: {numel} elements, the pickle said {s.numel}")
            s.data = np.frombuffer(f.read(4 * numel), dtype="<f4")
        if f.read(1):
            raise ValueError("bytes after the last storage")
    return {k: v.array() for k, v in checkpoint["model_state"].items()}


def build(state):
    def reorder(w):  # PyTorch i,f,g,o -> ONNX i,o,f,c
        i, f, g, o = np.split(w, 4, axis=0)
        return np.concatenate([i, o, f, g], axis=0)

    inits, nodes = [], []
    nodes.append(helper.make_node("Transpose", ["mels"], ["x0"], perm=[1, 0, 2]))
    x = "x0"
    for layer in range(LAYERS):
        w = reorder(state[f"lstm.weight_ih_l{layer}"])[None]
        r = reorder(state[f"lstm.weight_hh_l{layer}"])[None]
        b = np.concatenate(
            [reorder(state[f"lstm.bias_ih_l{layer}"]), reorder(state[f"lstm.bias_hh_l{layer}"])]
        )[None]
        for name, a in (("W", w), ("R", r), ("B", b)):
            inits.append(numpy_helper.from_array(a.astype(np.float32), f"{name}{layer}"))
        y, yh = f"y{layer}", f"h{layer}"
        nodes.append(helper.make_node(
            "LSTM", [x, f"W{layer}", f"R{layer}", f"B{layer}"], [y, yh], hidden_size=HIDDEN))
        if layer + 1 < LAYERS:
            inits.append(numpy_helper.from_array(np.array([1], np.int64), f"ax{layer}"))
            nodes.append(helper.make_node("Squeeze", [y, f"ax{layer}"], [f"x{layer + 1}"]))
            x = f"x{layer + 1}"
    inits.append(numpy_helper.from_array(np.array([0], np.int64), "ax_last"))
    nodes.append(helper.make_node("Squeeze", [f"h{LAYERS - 1}", "ax_last"], ["last"]))
    inits.append(numpy_helper.from_array(state["linear.weight"].astype(np.float32), "lin_w"))
    inits.append(numpy_helper.from_array(state["linear.bias"].astype(np.float32), "lin_b"))
    nodes.append(helper.make_node("Gemm", ["last", "lin_w", "lin_b"], ["lin"], transB=1))
    nodes.append(helper.make_node("Relu", ["lin"], ["embedding"]))
    graph = helper.make_graph(
        nodes, "resemblyzer_voice_encoder",
        [helper.make_tensor_value_info("mels", TensorProto.FLOAT, [1, FRAMES, MELS])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, HIDDEN])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="ketang resemblyzer_to_onnx.py")
    model.doc_string = "Resemblyzer 0.1.4 voice encoder (Apache-2.0), GE2E; see docs/models.md"
    onnx.checker.check_model(model)
    return model


def numpy_reference(state, mels):
    """PyTorch's nn.LSTM equations, gates in the checkpoint's own order (i, f, g, o)."""
    sig = lambda v: 0.5 * (1 + np.tanh(v / 2))  # noqa: E731
    x = mels[0].astype(np.float64)
    for layer in range(LAYERS):
        wi, wh = state[f"lstm.weight_ih_l{layer}"], state[f"lstm.weight_hh_l{layer}"]
        b = state[f"lstm.bias_ih_l{layer}"] + state[f"lstm.bias_hh_l{layer}"]
        h, c, out = np.zeros(HIDDEN), np.zeros(HIDDEN), []
        for t in range(x.shape[0]):
            i, f, g, o = np.split(wi @ x[t] + wh @ h + b, 4)
            c = sig(f) * c + sig(i) * np.tanh(g)
            h = sig(o) * np.tanh(c)
            out.append(h)
        x = np.array(out)
    return np.maximum(state["linear.weight"] @ x[-1] + state["linear.bias"], 0)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    state = load_state(src)
    model = build(state)
    onnx.save(model, dst)
    import onnxruntime as ort

    sess = ort.InferenceSession(dst, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    worst = 0.0
    for scale in (0.01, 1.0, 30.0):  # mel power spans decades: quiet, speech, loud
        mels = (rng.random((1, FRAMES, MELS)) * scale).astype(np.float32)
        got = sess.run(None, {"mels": mels})[0][0]
        want = numpy_reference(state, mels)
        worst = max(worst, float(np.abs(got - want).max()))
    if worst > 1e-4:
        sys.exit(f"the ONNX voice encoder differs from the numpy LSTM by {worst:.2e}")
    print(f"voice encoder: {len(model.graph.node)} nodes; onnxruntime vs numpy LSTM max |diff| {worst:.1e}")


if __name__ == "__main__":
    main()
