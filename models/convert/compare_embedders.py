"""Measures face embedders on a labelled set built from packaged photos (docs/models.md).

    python compare_embedders.py EMBED_BIN MODEL_DIR PHOTO_DIR

EMBED_BIN is models/examples/embed.rs built (it runs the daemon's camera path: detection,
alignment, embedding). PHOTO_DIR holds, from public registry packages:
  * face_recognition 1.3.0 (PyPI, MIT) tests/test_images: obama.jpg, obama2.jpg,
    obama3.jpg (three photos of one person), biden.jpg;
  * @vladmandic/face-api 1.7.15 (npm, MIT) demo/sample1-6.jpg: group photos;
  * astronaut.png (scikit-image, public domain).
Labels, without guessing who is who in the group photos:
  * same person: the three Obama photos with each other, and every face against itself
    shrunk to a lecture-hall size (eyes 24 and 16 px apart) and as a darker JPEG;
  * different people: faces in one group photo with each other (they are different
    people), and Obama, Biden and the astronaut with each other and with every face.
For each embedder: the similarities of both kinds, the threshold that separates them best,
and how many pairs each side of it.
"""
import io
import itertools
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image, ImageEnhance

embed_bin, model_dir, photo_dir = sys.argv[1:4]
named = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "astronaut.png"]
groups = [f"sample{i}.jpg" for i in range(1, 7)]
tmp = tempfile.mkdtemp()


def darker_jpeg(name):
    """The photo darker (55 % brightness) and saved as a quality-60 JPEG."""
    img = Image.open(os.path.join(photo_dir, name)).convert("RGB")
    buf = io.BytesIO()
    ImageEnhance.Brightness(img).enhance(0.55).save(buf, "JPEG", quality=60)
    p = os.path.join(tmp, f"dark-{name}.png")
    Image.open(buf).save(p)
    return p


def run(model, paths):
    out = subprocess.run([embed_bin, model_dir, model, *paths], check=True, capture_output=True, text=True).stdout
    return [json.loads(l) for l in out.splitlines()]


def biggest(faces, image):
    fs = [f for f in faces if f["image"] == image]
    return max(fs, key=lambda f: f["eyes_px"]) if fs else None


def measure(model):
    originals = [os.path.join(photo_dir, n) for n in named + groups]
    faces = run(model, originals)
    same, diff = [], []
    top = {n: biggest(faces, os.path.join(photo_dir, n)) for n in named}
    for a, b in itertools.combinations(["obama.jpg", "obama2.jpg", "obama3.jpg"], 2):
        same.append((f"{a}~{b}", top[a], top[b]))
    for a, b in itertools.combinations(["obama.jpg", "biden.jpg", "astronaut.png"], 2):
        diff.append((f"{a}~{b}", top[a], top[b]))
    for g in groups:
        fs = [f for f in faces if f["image"] == os.path.join(photo_dir, g) and f["eyes_px"] >= 30]
        for a, b in itertools.combinations(fs, 2):
            diff.append((f"{g} two people", a, b))
        for f in fs:
            for n in ("obama.jpg", "biden.jpg", "astronaut.png"):
                diff.append((f"{g}~{n}", f, top[n]))
    # Each named face against itself smaller and darker.
    scaled = []
    for n in named:
        f = top[n]
        img = Image.open(os.path.join(photo_dir, n)).convert("RGB")
        for eyes in (24, 16):
            k = eyes / f["eyes_px"]
            p = os.path.join(tmp, f"eyes{eyes}-{n}.png")
            img.resize((max(1, round(img.width * k)), max(1, round(img.height * k))), Image.BILINEAR).save(p)
            scaled.append((n, f"eyes {eyes} px", p))
        scaled.append((n, "darker JPEG", darker_jpeg(n)))
    vf = run(model, [p for _, _, p in scaled])
    small = []
    for n, what, p in scaled:
        g = biggest(vf, p)
        if g is None:
            small.append((n, what, None))
            continue
        small.append((n, what, float(np.dot(top[n]["embedding"], g["embedding"]))))
    s = [float(np.dot(a["embedding"], b["embedding"])) for _, a, b in same] + [v for *_, v in small if v is not None]
    d = [float(np.dot(a["embedding"], b["embedding"])) for _, a, b in diff]
    return same, diff, small, s, d


for model in sys.argv[4:] or ["dlib_resnet_v1", "mobilefacenet_192_b1"]:
    same, diff, small, s, d = measure(model)
    s, d = np.array(s), np.array(d)
    # The threshold that misclassifies fewest pairs (ties: the midpoint of the gap).
    cands = np.sort(np.concatenate([s, d]))
    errs = [(int((s < t).sum() + (d >= t).sum()), t) for t in cands]
    best = min(e for e, _ in errs)
    ts = [t for e, t in errs if e == best]
    print(f"== {model}")
    print(f"  same person: {len(s)} pairs, similarity min {s.min():.3f} median {np.median(s):.3f}")
    for name, a, b in same:
        print(f"    {name}: {np.dot(a['embedding'], b['embedding']):.3f}")
    for n, what, v in small:
        print(f"    {n} vs itself, {what}: {'no face found' if v is None else f'{v:.3f}'}")
    print(f"  different people: {len(d)} pairs, similarity max {d.max():.3f} median {np.median(d):.3f} (99th pct {np.percentile(d, 99):.3f})")
    print(f"  gap between the lowest same-person and the highest different-people pair: {s.min() - d.max():+.3f}")
    dprime = (s.mean() - d.mean()) / np.sqrt((s.var() + d.var()) / 2)
    print(f"  gap over the different-people spread: {(s.min() - d.max()) / d.std():+.2f} sd; d' (separation of the two kinds) {dprime:.2f}")
    print(f"  fewest errors {best} with a threshold in [{min(ts):.3f}, {max(ts):.3f}]")
