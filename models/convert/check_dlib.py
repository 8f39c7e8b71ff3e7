"""Checks the converted dlib face descriptor against dlib itself.

    python check_dlib.py MODEL.onnx MODELS_DIR IMAGE...

MODELS_DIR holds dlib's dlib_face_recognition_resnet_model_v1.dat and
shape_predictor_5_face_landmarks.dat (PyPI face_recognition_models). For every face dlib
finds in the images (its HOG detector, its 5-point landmarks, its own 150 x 150 chip), and
for fixed noise chips, dlib's descriptor and the ONNX model's (onnxruntime) are compared;
exits 1 if any element differs by more than 1e-3.
"""
import sys

import dlib
import numpy as np
import onnxruntime as ort
from PIL import Image

onnx_path, models, images = sys.argv[1], sys.argv[2], sys.argv[3:]
rec = dlib.face_recognition_model_v1(f"{models}/dlib_face_recognition_resnet_model_v1.dat")
sp = dlib.shape_predictor(f"{models}/shape_predictor_5_face_landmarks.dat")
det = dlib.get_frontal_face_detector()
sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])

chips = []
for path in images:
    img = np.asarray(Image.open(path).convert("RGB"))
    for r in det(img, 1):
        chips.append((f"{path} {r}", dlib.get_face_chip(img, sp(img, r), size=150, padding=0.25)))
rng = np.random.default_rng(7)
for i in range(3):
    chips.append((f"noise {i}", rng.integers(0, 256, (150, 150, 3), dtype=np.uint8)))

worst = 0.0
for what, chip in chips:
    want = np.array(rec.compute_face_descriptor(chip))
    got = sess.run(None, {"input": chip[None].astype(np.float32)})[0][0]
    d = float(np.abs(want - got).max())
    worst = max(worst, d)
    print(f"{what}: max abs diff {d:.2e} (|descriptor| {np.linalg.norm(want):.3f})")
print(f"{len(chips)} chips, worst max abs diff {worst:.2e}")
sys.exit(0 if worst <= 1e-3 else 1)
