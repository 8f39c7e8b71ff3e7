"""Where onnxruntime spends its time on one model: per operator type and the costliest
nodes, one thread, mean times over 20 runs after 3 warm-ups (onnxruntime's own
profiler). The counterpart of models/examples/profile.rs for tract.

Usage: python3 bench/ort_profile.py MODEL.onnx 1,192,192,3 f32|i32
"""
import collections
import json
import os
import sys
import tempfile

import numpy as np
import onnxruntime as ort

path, shape, dt = sys.argv[1], [int(x) for x in sys.argv[2].split(',')], sys.argv[3]
o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.inter_op_num_threads = 1
o.enable_profiling = True
tmp = tempfile.mkdtemp()
o.profile_file_prefix = os.path.join(tmp, "ort")
s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
n = int(np.prod(shape))
v = ((np.arange(n) * 7919) % 255).astype(np.float32) / 255.0
x = (v*255).astype(np.int32).reshape(shape) if dt == 'i32' else v.reshape(shape)
feed = {s.get_inputs()[0].name: x}
for i in s.get_inputs()[1:]:
    feed[i.name] = np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
for _ in range(23): s.run(None, feed)
p = s.end_profiling()
events = json.load(open(p))
os.remove(p)
os.rmdir(tmp)
ev = [e for e in events if e.get('cat') == 'Node' and e['name'].endswith('_kernel_time')]
ev = ev[len(ev)*3//23:]
per = collections.defaultdict(float); nodes = collections.defaultdict(float); shapes = {}
for e in ev:
    per[e['args']['op_name']] += e['dur'] / 20
    nodes[e['name']] += e['dur'] / 20
    shapes[e['name']] = e['args'].get('output_type_shape')
tot = sum(per.values())
print(f"total {tot/1000:.3f} ms")
for k, v in sorted(per.items(), key=lambda kv: -kv[1]): print(f"  {v/1000:7.3f} ms  {k}")
for k, v in sorted(nodes.items(), key=lambda kv: -kv[1])[:12]: print(f"  {v/1000:7.3f} ms  {k} {shapes[k]}")
