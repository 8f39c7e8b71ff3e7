"""Reference numbers for Ketang's voice features and encoder, from librosa and PyTorch's
LSTM equations (not from Ketang's code). Run once; the numbers are in
models/src/voice.rs (tests) and models/examples/verify.rs.

    python voice_reference.py pretrained.pt      # librosa 0.10.2.post1, numpy < 2
"""
import sys

import librosa
import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from resemblyzer_to_onnx import load_state, numpy_reference  # noqa: E402

# 1 s: a 440 Hz tone and a chirp from 300 Hz (the same formula in voice.rs's test).
t = np.arange(16000, dtype=np.float64) / 16000
x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * (300 * t + 1500 * t * t))).astype(np.float32)
mel = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=400, hop_length=160, n_mels=40).T
print("frames", mel.shape)
for row in (0, 50, 100):
    print(f"row {row}:", ", ".join(f"{v:.6e}" for v in mel[row]))

# The encoder on a fixed mel input (the same formula in verify.rs).
mels = np.array([[((tt * 7 + m * 3) % 23) / 23 * 0.5 for m in range(40)] for tt in range(160)], np.float32)[None]
state = load_state(sys.argv[1])
raw = numpy_reference(state, mels)
nz = [(i, raw[i]) for i in np.nonzero(raw)[0][:8]]
print("raw nonzero:", ", ".join(f"({i}, {v:.6f})" for i, v in nz), " zeros", int((raw == 0).sum()), " norm", float(np.linalg.norm(raw)))
