"""dlib's face recognition ResNet as ONNX, from dlib's own XML dump of the network.

    python dlib_to_onnx.py NET.xml OUT.onnx

NET.xml is what dlib's `net_to_xml` writes for `dlib_face_recognition_resnet_model_v1.dat`
(models/convert/dlib_to_xml.cpp). The ONNX model takes one aligned 150 x 150 RGB chip as
float pixels 0-255, NHWC [1,150,150,3], and gives dlib's 128-d descriptor [1,128] (not
normalised, exactly as dlib computes it).

dlib's semantics that differ from the usual ones, kept exactly:
  * input: (pixel - mean of the channel) / 256, means from the XML;
  * `con` and pooling with stride 2 have no padding (dlib's default), so the two branches
    of a residual block can differ by a row and a column;
  * `add_prev` then adds them zero-padded to the larger size at the bottom and right;
  * `affine_con` is a per-channel scale and shift (batch norm folded).
Checked against dlib itself by models/convert/check_dlib.py.
"""
import re
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

src, dst = sys.argv[1], sys.argv[2]
text = open(src).read()
body = text[text.index("<net>") + 5:text.rindex("</net>")]
layers = re.findall(r"<layer idx='(\d+)' type='(\w+)'(?: id='(\d+)')?\s*(/>|>(.*?)</layer>)", body, re.S)
layers.sort(key=lambda l: -int(l[0]))  # input first

nodes, inits = [], []
count = [0]


def name(prefix):
    count[0] += 1
    return f"{prefix}_{count[0]}"


def const(arr, prefix):
    n = name(prefix)
    inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), n))
    return n


def numbers(s):
    return np.array(s.split(), dtype=np.float32)


def attrs(tag):
    return dict(re.findall(r"(\w+)='([^']*)'", tag))


def out_size(n, k, s, p):
    return 1 + (n + 2 * p - k) // s


cur, shape = None, None  # tensor name, (C, H, W)
tags = {}
for idx, kind, lid, _, inner in layers:
    if kind == "tag":
        tags[lid] = (cur, shape)
        continue
    if kind == "skip":
        cur, shape = tags[lid]
        continue
    if kind == "loss":
        continue
    m = re.match(r"\s*<(\w+)([^>]*?)(/?)>(.*)", inner, re.S)
    op, tag, _, rest = m.group(1), m.group(2), m.group(3), m.group(4)
    a = attrs(tag)
    if op == "input_rgb_image_sized":
        nr, nc = int(a["nr"]), int(a["nc"])
        mean = np.array([float(a["r"]), float(a["g"]), float(a["b"])], dtype=np.float32)
        x = "input"
        y = name("centred")
        nodes.append(helper.make_node("Sub", [x, const(mean.reshape(1, 1, 1, 3), "mean")], [y]))
        z = name("scaled")
        nodes.append(helper.make_node("Mul", [y, const(np.array(1 / 256, dtype=np.float32), "scale")], [z]))
        cur = name("nchw")
        nodes.append(helper.make_node("Transpose", [z], [cur], perm=[0, 3, 1, 2]))
        shape = (3, nr, nc)
    elif op == "con":
        k = int(a["num_filters"])
        kh, kw = int(a["nr"]), int(a["nc"])
        sy, sx = int(a["stride_y"]), int(a["stride_x"])
        py, px = int(a["padding_y"]), int(a["padding_x"])
        p = numbers(rest[: rest.index("</con>")])
        c = shape[0]
        nw = k * c * kh * kw
        bias = a.get("use_bias", "true") == "true"
        assert len(p) == nw + (k if bias else 0), (idx, len(p), nw, k)
        ins = [cur, const(p[:nw].reshape(k, c, kh, kw), "w")]
        if bias:
            ins.append(const(p[nw:], "b"))
        cur = name("conv")
        nodes.append(helper.make_node("Conv", ins, [cur], kernel_shape=[kh, kw], strides=[sy, sx], pads=[py, px, py, px]))
        shape = (k, out_size(shape[1], kh, sy, py), out_size(shape[2], kw, sx, px))
    elif op == "affine_con":
        p = numbers(rest[: rest.index("</affine_con>")])
        c = shape[0]
        assert len(p) == 2 * c, (idx, len(p), c)
        y = name("gamma")
        nodes.append(helper.make_node("Mul", [cur, const(p[:c].reshape(1, c, 1, 1), "g")], [y]))
        cur = name("affine")
        nodes.append(helper.make_node("Add", [y, const(p[c:].reshape(1, c, 1, 1), "beta")], [cur]))
    elif op == "relu":
        y = name("relu")
        nodes.append(helper.make_node("Relu", [cur], [y]))
        cur = y
    elif op in ("max_pool", "avg_pool"):
        kh, kw = int(a["nr"]), int(a["nc"])
        sy, sx = int(a["stride_y"]), int(a["stride_x"])
        py, px = int(a["padding_y"]), int(a["padding_x"])
        y = name(op)
        if kh == 0 and kw == 0:  # avg_pool_everything
            nodes.append(helper.make_node("GlobalAveragePool", [cur], [y]))
            shape = (shape[0], 1, 1)
        else:
            assert py == 0 and px == 0, "dlib pads pooling with the edge value; only unpadded pooling is converted"
            onnx_op = "MaxPool" if op == "max_pool" else "AveragePool"
            nodes.append(helper.make_node(onnx_op, [cur], [y], kernel_shape=[kh, kw], strides=[sy, sx]))
            shape = (shape[0], out_size(shape[1], kh, sy, 0), out_size(shape[2], kw, sx, 0))
        cur = y
    elif op == "add_prev":
        other, oshape = tags[a["tag"]]
        full = tuple(max(u, v) for u, v in zip(shape, oshape))
        def padded(t, s):
            if s == full:
                return t
            pads = [0, 0, 0, 0, 0, full[0] - s[0], full[1] - s[1], full[2] - s[2]]
            y = name("pad")
            nodes.append(helper.make_node("Pad", [t, const(np.array(pads, dtype=np.int64), "pads")], [y]))
            return y
        y = name("add")
        nodes.append(helper.make_node("Add", [padded(cur, shape), padded(other, oshape)], [y]))
        cur, shape = y, full
    elif op == "fc_no_bias":
        k = int(a["num_outputs"])
        p = numbers(rest[: rest.index("</fc_no_bias>")])
        n_in = shape[0] * shape[1] * shape[2]
        assert len(p) == n_in * k, (len(p), n_in, k)
        f = name("flat")
        nodes.append(helper.make_node("Flatten", [cur], [f]))
        cur = "descriptor"
        nodes.append(helper.make_node("MatMul", [f, const(p.reshape(n_in, k), "fc")], [cur]))
        shape = (k,)
    else:
        raise SystemExit(f"layer {idx}: dlib layer <{op}> is not converted")

graph = helper.make_graph(
    nodes, "dlib_face_recognition_resnet_model_v1",
    [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 150, 150, 3])],
    [helper.make_tensor_value_info("descriptor", TensorProto.FLOAT, [1, shape[0]])],
    inits,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="ketang models/convert/dlib_to_onnx.py")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, dst)
print(f"{dst}: {len(nodes)} nodes, {sum(np.prod(i.dims) for i in inits)} parameters")
