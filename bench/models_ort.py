"""onnxruntime latency of each model on the same fixed input as models/examples/bench.rs.

One thread (intra and inter op), batch 1, median of RUNS runs after 3 warm-ups. Prints one
JSON line per model. Usage: python3 bench/models_ort.py MODEL_DIR [RUNS]
"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort

MODELS = [
    ("face_detection_short_range.onnx", [("float32", [1, 128, 128, 3])]),
    ("face_detection_full_range.onnx", [("float32", [1, 192, 192, 3])]),
    ("mobilefacenet_192_b1.onnx", [("float32", [1, 112, 112, 3])]),
    ("dlib_face_recognition_resnet_v1.onnx", [("float32", [1, 150, 150, 3])]),
    ("movenet-lightning.onnx", [("int32", [1, 192, 192, 3])]),
    ("nanodet.onnx", [("float32", [1, 3, 416, 416])]),
    ("silero_vad_16k_sequence.onnx", [("float32", [31, 576]), ("float32", [1, 1, 128]), ("float32", [1, 1, 128])]),
    ("resemblyzer_voice_encoder.onnx", [("float32", [1, 160, 40])]),
]


def bench_input(shape, dtype):
    n = int(np.prod(shape))
    v = ((np.arange(n, dtype=np.int64) * 7919) % 255).astype(np.float32) / 255.0
    if dtype == "int32":
        return (v * 255.0).astype(np.int32).reshape(shape)
    if shape == [1, 1, 128]:
        return np.zeros(shape, np.float32)
    return v.reshape(shape)


def main():
    d = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    for name, inputs in MODELS:
        s = ort.InferenceSession(f"{d}/{name}", o, providers=["CPUExecutionProvider"])
        feed = {i.name: bench_input(shape, dt) for i, (dt, shape) in zip(s.get_inputs(), inputs)}
        for _ in range(3):
            s.run(None, feed)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            s.run(None, feed)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        print(json.dumps({"model": name, "runtime": "onnxruntime", "version": ort.__version__, "median_ms": round(times[len(times) // 2], 3)}))


main()
