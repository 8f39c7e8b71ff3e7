//! Faster evaluation of the few operators where tract 0.23's generic code, not arithmetic,
//! took most of the models' time (measured per node with `models/examples/profile.rs`):
//! depthwise convolutions with a stride or a one-sided pad (10 ns per output against 1 ns
//! for the plain case), max pooling, constant padding, bilinear resizing and broadcast
//! arithmetic against a per-channel constant.
//!
//! After tract has optimised a model, [`accelerate`] swaps those nodes for the operators
//! here. Each takes over only the parameter sets it covers (f32, 2-D, no dilation, shapes
//! known) and must reproduce the node's output shape exactly; anything else stays tract's.
//! `tests` in this module and `tests/kernels.rs` compare every model's outputs with and
//! without them.
//!
//! Safe Rust, written so the compiler vectorises the inner loops: every inner loop runs
//! over contiguous slices. A strided window (stride 2) is read from *phase planes*: the
//! input row split into its even and odd columns once, so `row[2·x + k]` becomes
//! `phase[k mod 2][x + k div 2]`.

use std::collections::HashMap;

use tract_onnx::prelude::tract_ndarray::{ArrayD, IxDyn};
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::array::{Pad, PadMode};
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::{Conv, OptMaxPool, PoolSpec};
use tract_onnx::tract_core::ops::nn::{DataFormat, resize::Resize};

/// Where a 2-D window slides: the input and output planes, window, strides, leading pads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Window {
    /// Input shape as stored (NCHW, CHW, NHWC or HWC).
    shape: TVec<usize>,
    channels_last: bool,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    pt: usize,
    pl: usize,
}

impl Window {
    /// The window of `spec` over an input of concrete `shape` laid out as `format`, if
    /// it is one this module evaluates (2-D, no dilation), with the output it gives.
    fn new(spec: &PoolSpec, format: DataFormat, shape: &[usize]) -> Option<Window> {
        if spec.kernel_shape.len() != 2 || spec.dilations().iter().any(|&d| d != 1) {
            return None;
        }
        let rank = if format.has_n() { 4 } else { 3 };
        if shape.len() != rank {
            return None;
        }
        let channels_last = format.c_is_last();
        let (n, rest) = if format.has_n() {
            (shape[0], &shape[1..])
        } else {
            (1, shape)
        };
        let (c, h, w) = if channels_last {
            (rest[2], rest[0], rest[1])
        } else {
            (rest[0], rest[1], rest[2])
        };
        let strides = spec.strides();
        let pads = spec.computed_padding(&[h, w]);
        Some(Window {
            shape: shape.into(),
            channels_last,
            n,
            c,
            h,
            w,
            oh: pads[0].convoluted,
            ow: pads[1].convoluted,
            kh: spec.kernel_shape[0],
            kw: spec.kernel_shape[1],
            sh: strides[0],
            sw: strides[1],
            pt: pads[0].pad_before,
            pl: pads[1].pad_before,
        })
    }

    fn output_shape(&self) -> TVec<usize> {
        let mut s: TVec<usize> = if self.shape.len() == 4 {
            tvec![self.n]
        } else {
            tvec![]
        };
        if self.channels_last {
            s.extend([self.oh, self.ow, self.c]);
        } else {
            s.extend([self.c, self.oh, self.ow]);
        }
        s
    }

    /// Input row `iy` for output row `oy` and window row `ky`, if inside the input.
    #[inline(always)]
    fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.sh + ky)
            .checked_sub(self.pt)
            .filter(|&iy| iy < self.h)
    }

    /// For window column `kx`: the phase plane to read and the offset `off` such that
    /// output column `ox` reads `phase[ox + off]`, with the range of `ox` that stays
    /// inside the input row.
    #[inline(always)]
    fn column_map(&self, kx: usize, phase_lens: &[usize]) -> (usize, isize, usize, usize) {
        let t = kx as isize - self.pl as isize;
        let s = self.sw as isize;
        let p = t.rem_euclid(s) as usize;
        let off = t.div_euclid(s);
        let len = phase_lens[p] as isize;
        let lo = (-off).max(0) as usize;
        let hi = (len - off).clamp(0, self.ow as isize) as usize;
        (p, off, lo, hi.max(lo))
    }

    /// Runs `row_op(out_row, src, w_index)` for every output row of one channel plane,
    /// after `init(out_row)`: `src[ox]` is the input under window tap `w_index` for
    /// output columns `ox` of `out_row` (the slice passed is already cut to the columns
    /// inside the input).
    #[inline(always)]
    fn sweep_plane(
        &self,
        plane: &[f32],
        out: &mut [f32],
        phases: &mut Vec<f32>,
        init: impl Fn(&mut [f32]),
        mut tap: impl FnMut(&mut [f32], &[f32], usize),
    ) {
        let (w, ow, sw) = (self.w, self.ow, self.sw);
        // Phase planes: columns p, p + sw, p + 2·sw … of each row, one plane per p.
        let phase_lens: TVec<usize> = (0..sw).map(|p| (w + sw - 1 - p) / sw).collect();
        if sw > 1 {
            phases.clear();
            for p in 0..sw {
                for row in plane.chunks_exact(w) {
                    phases.extend(row.iter().skip(p).step_by(sw));
                }
            }
        }
        let mut phase_starts: TVec<usize> = tvec![0];
        for p in 0..sw {
            phase_starts.push(phase_starts[p] + phase_lens[p] * self.h);
        }
        let maps: TVec<_> = (0..self.kw)
            .map(|kx| self.column_map(kx, &phase_lens))
            .collect();
        for (oy, out_row) in out.chunks_exact_mut(ow).enumerate() {
            init(out_row);
            for ky in 0..self.kh {
                let Some(iy) = self.input_row(oy, ky) else {
                    continue;
                };
                for (kx, &(p, off, lo, hi)) in maps.iter().enumerate() {
                    if lo >= hi {
                        continue;
                    }
                    let row: &[f32] = if sw == 1 {
                        &plane[iy * w..][..w]
                    } else {
                        &phases[phase_starts[p] + iy * phase_lens[p]..][..phase_lens[p]]
                    };
                    let start = (lo as isize + off) as usize;
                    tap(
                        &mut out_row[lo..hi],
                        &row[start..start + (hi - lo)],
                        ky * self.kw + kx,
                    );
                }
            }
        }
    }
}

/// `out[ox] += Σ k[kx] · row[ox·s + kx − pl]` over the three window columns, skipping
/// columns outside `row`: the interior without any check, the edges one tap at a time.
#[inline(always)]
fn taps3_row(out: &mut [f32], row: &[f32], k: [f32; 3], s: usize, pl: usize) {
    // A stride known at compile time lets the interior loop vectorise (4× here).
    match s {
        1 => taps3_row_s::<1>(out, row, k, pl),
        2 => taps3_row_s::<2>(out, row, k, pl),
        _ => taps3_row_dyn(out, row, k, s, pl),
    }
}

#[inline(always)]
fn taps3_row_s<const S: usize>(out: &mut [f32], row: &[f32], k: [f32; 3], pl: usize) {
    if S == 1 && pl == 1 && row.len() >= 3 && out.len() == row.len() {
        // The common "same" case: three shifted slices, no index arithmetic.
        let (w, n) = (row.len(), row.len() - 2);
        let (a, b, c) = (&row[..n], &row[1..n + 1], &row[2..]);
        for (((o, &a), &b), &c) in out[1..w - 1].iter_mut().zip(a).zip(b).zip(c) {
            *o += k[0] * a + k[1] * b + k[2] * c;
        }
        out[0] += k[1] * row[0] + k[2] * row[1];
        out[w - 1] += k[0] * row[w - 2] + k[1] * row[w - 1];
        return;
    }
    taps3_row_dyn(out, row, k, S, pl);
}

#[inline(always)]
fn taps3_row_dyn(out: &mut [f32], row: &[f32], k: [f32; 3], s: usize, pl: usize) {
    let w = row.len();
    let lo = pl.div_ceil(s).min(out.len());
    let hi = if w + pl >= 3 {
        ((w + pl - 3) / s + 1).clamp(lo, out.len())
    } else {
        lo
    };
    for (ox, o) in out.iter_mut().enumerate().take(hi).skip(lo) {
        let win = &row[ox * s - pl..][..3];
        *o += k[0] * win[0] + k[1] * win[1] + k[2] * win[2];
    }
    for ox in (0..lo).chain(hi..out.len()) {
        for (kx, &kv) in k.iter().enumerate() {
            if let Some(ix) = (ox * s + kx).checked_sub(pl).filter(|&ix| ix < w) {
                out[ox] += kv * row[ix];
            }
        }
    }
}

fn plain_f32(t: &TValue) -> TractResult<&[f32]> {
    t.try_as_plain_ram()?.as_slice::<f32>()
}

fn tensor_from(shape: &[usize], data: Vec<f32>) -> TractResult<TValue> {
    Ok(ArrayD::from_shape_vec(IxDyn(shape), data)?
        .into_tensor()
        .into_tvalue())
}

/// The `Op` and `TypedOp` impls the operators here share: a name, and the output fact
/// `$fact` computes from the operator and the input facts (the evaluation is their own).
macro_rules! ketang_op {
    ($ty:ty, $name:literal, |$op:ident, $inputs:ident| $fact:expr) => {
        impl Op for $ty {
            fn name(&self) -> StaticName {
                $name.into()
            }
            op_as_typed_op!();
        }

        impl TypedOp for $ty {
            as_op!();

            fn output_facts(&self, $inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
                let $op = self;
                Ok(tvec![$fact])
            }
        }
    };
}

/// Depthwise 2-D convolution (one filter per channel) with bias; inputs: data, kernel
/// (`[C, 1, kh·kw]` channels first or `[1, kh·kw, C]` channels last, as tract lays it
/// out), bias (`C` values).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Depthwise {
    win: Window,
}

impl EvalOp for Depthwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext<'_>, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let win = &self.win;
        let (input, kernel, bias) = (
            plain_f32(&inputs[0])?,
            plain_f32(&inputs[1])?,
            plain_f32(&inputs[2])?,
        );
        let (c, taps) = (win.c, win.kh * win.kw);
        ensure!(kernel.len() == c * taps && (bias.len() == c || bias.len() == 1));
        let b = |ch: usize| if bias.len() == 1 { bias[0] } else { bias[ch] };
        let plane_in = win.h * win.w;
        let plane_out = win.oh * win.ow;
        let mut out = vec![0f32; win.n * c * plane_out];
        // AVX2/FMA code for the loops below where the CPU has them.
        pulp::Arch::new().dispatch(|| {
            if win.channels_last {
                let bias_row: Vec<f32> = (0..c).map(b).collect();
                for (img_in, img_out) in input
                    .chunks_exact(plane_in * c)
                    .zip(out.chunks_exact_mut(plane_out * c))
                {
                    for (oy, out_row) in img_out.chunks_exact_mut(win.ow * c).enumerate() {
                        for px in out_row.chunks_exact_mut(c) {
                            px.copy_from_slice(&bias_row);
                        }
                        for ky in 0..win.kh {
                            let Some(iy) = win.input_row(oy, ky) else {
                                continue;
                            };
                            let in_row = &img_in[iy * win.w * c..][..win.w * c];
                            for kx in 0..win.kw {
                                let k = &kernel[(ky * win.kw + kx) * c..][..c];
                                // Output columns whose input column ox·sw + kx − pl is inside.
                                let lo = win.pl.saturating_sub(kx).div_ceil(win.sw);
                                let hi = ((win.w + win.pl).saturating_sub(kx + 1) / win.sw + 1)
                                    .min(win.ow);
                                for ox in lo..hi {
                                    let ix = ox * win.sw + kx - win.pl;
                                    let src = &in_row[ix * c..][..c];
                                    let dst = &mut out_row[ox * c..][..c];
                                    for ((o, &v), &k) in dst.iter_mut().zip(src).zip(k) {
                                        *o += k * v;
                                    }
                                }
                            }
                        }
                    }
                }
            } else if win.kw == 3 {
                for (i, (plane, out_plane)) in input
                    .chunks_exact(plane_in)
                    .zip(out.chunks_exact_mut(plane_out))
                    .enumerate()
                {
                    let ch = i % c;
                    let k = &kernel[ch * taps..][..taps];
                    for (oy, out_row) in out_plane.chunks_exact_mut(win.ow).enumerate() {
                        out_row.fill(b(ch));
                        for ky in 0..win.kh {
                            let Some(iy) = win.input_row(oy, ky) else {
                                continue;
                            };
                            let row = &plane[iy * win.w..][..win.w];
                            let kr: [f32; 3] = [k[ky * 3], k[ky * 3 + 1], k[ky * 3 + 2]];
                            taps3_row(out_row, row, kr, win.sw, win.pl);
                        }
                    }
                }
            } else {
                let mut phases = Vec::new();
                for (i, (plane, out_plane)) in input
                    .chunks_exact(plane_in)
                    .zip(out.chunks_exact_mut(plane_out))
                    .enumerate()
                {
                    let ch = i % c;
                    let k = &kernel[ch * taps..][..taps];
                    let bias = b(ch);
                    win.sweep_plane(
                        plane,
                        out_plane,
                        &mut phases,
                        |row| row.fill(bias),
                        |dst, src, tap| {
                            let w = k[tap];
                            for (o, &v) in dst.iter_mut().zip(src) {
                                *o += w * v;
                            }
                        },
                    );
                }
            }
        });
        Ok(tvec![tensor_from(&win.output_shape(), out)?])
    }
}

ketang_op!(Depthwise, "KetangDepthwise", |op, inputs| inputs[0]
    .datum_type
    .fact(&*op.win.output_shape()));

/// 2-D max pooling over channel-first data; padded cells never win.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct MaxPool {
    win: Window,
}

impl EvalOp for MaxPool {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext<'_>, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let win = &self.win;
        let input = plain_f32(&inputs[0])?;
        let plane_out = win.oh * win.ow;
        let mut out = vec![0f32; win.n * win.c * plane_out];
        let mut phases = Vec::new();
        for (plane, out_plane) in input
            .chunks_exact(win.h * win.w)
            .zip(out.chunks_exact_mut(plane_out))
        {
            win.sweep_plane(
                plane,
                out_plane,
                &mut phases,
                |row| row.fill(f32::NEG_INFINITY),
                |dst, src, _| {
                    for (o, &v) in dst.iter_mut().zip(src) {
                        *o = o.max(v);
                    }
                },
            );
        }
        Ok(tvec![tensor_from(&win.output_shape(), out)?])
    }
}

ketang_op!(MaxPool, "KetangMaxPool", |op, inputs| inputs[0]
    .datum_type
    .fact(&*op.win.output_shape()));

/// Constant padding of an f32 tensor of known shape, copying whole rows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ConstPad {
    shape: TVec<usize>,
    pads: Vec<(usize, usize)>,
    value_bits: u32,
}

impl ConstPad {
    fn output_shape(&self) -> TVec<usize> {
        self.shape
            .iter()
            .zip(&self.pads)
            .map(|(d, (a, b))| d + a + b)
            .collect()
    }
}

impl EvalOp for ConstPad {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext<'_>, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = plain_f32(&inputs[0])?;
        let oshape = self.output_shape();
        let rank = oshape.len();
        let mut out = vec![f32::from_bits(self.value_bits); oshape.iter().product()];
        let last = self.shape[rank - 1];
        if last > 0 {
            // Output strides, and for each input row (all axes but the last) its offset.
            let mut ostride = vec![1usize; rank];
            for a in (0..rank - 1).rev() {
                ostride[a] = ostride[a + 1] * oshape[a + 1];
            }
            let base: usize = self
                .pads
                .iter()
                .zip(&ostride)
                .map(|((b, _), s)| b * s)
                .sum();
            let mut idx = vec![0usize; rank - 1];
            for row in input.chunks_exact(last) {
                let at = base + idx.iter().zip(&ostride).map(|(i, s)| i * s).sum::<usize>();
                out[at..at + last].copy_from_slice(row);
                for a in (0..rank - 1).rev() {
                    idx[a] += 1;
                    if idx[a] < self.shape[a] {
                        break;
                    }
                    idx[a] = 0;
                }
            }
        }
        Ok(tvec![tensor_from(&oshape, out)?])
    }
}

ketang_op!(ConstPad, "KetangPad", |op, inputs| inputs[0]
    .datum_type
    .fact(&*op.output_shape()));

/// tract's Resize with only the last two axes changed: the same per-axis plans (so the
/// same arithmetic, in the same order), evaluated a row at a time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Resize2d {
    inner: Resize,
    shape: TVec<usize>,
    out_shape: TVec<usize>,
    scales_bits: TVec<u32>,
}

impl EvalOp for Resize2d {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext<'_>, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = plain_f32(&inputs[0])?;
        let r = self.shape.len();
        let (h, w, oh, ow) = (
            self.shape[r - 2],
            self.shape[r - 1],
            self.out_shape[r - 2],
            self.out_shape[r - 1],
        );
        let scale = |a: usize| f32::from_bits(self.scales_bits[a]);
        let ident = |a: usize| self.shape[a] == self.out_shape[a] && scale(a) == 1.0;
        let py = (!ident(r - 2)).then(|| self.inner.plan_axis(scale(r - 2), h, oh));
        let px = (!ident(r - 1)).then(|| self.inner.plan_axis(scale(r - 1), w, ow));
        let planes = input.len() / (h * w);
        let mut out = vec![0f32; planes * oh * ow];
        let mut tmp = vec![0f32; w];
        for (plane, out_plane) in input.chunks_exact(h * w).zip(out.chunks_exact_mut(oh * ow)) {
            for (y, out_row) in out_plane.chunks_exact_mut(ow).enumerate() {
                // Rows first, as tract resamples axis by axis in order.
                let row: &[f32] = match &py {
                    None => &plane[y * w..][..w],
                    Some(p) => {
                        tmp.fill(0.0);
                        if !p.extrapolated[y] {
                            let taps = p.indices[y * p.window..][..p.window]
                                .iter()
                                .zip(&p.weights[y * p.window..][..p.window]);
                            for (&i, &wt) in taps {
                                if wt == 0.0 {
                                    continue;
                                }
                                for (d, s) in tmp.iter_mut().zip(&plane[i * w..][..w]) {
                                    *d += wt * s;
                                }
                            }
                        }
                        &tmp
                    }
                };
                match &px {
                    None => out_row.copy_from_slice(row),
                    Some(p) => {
                        for (x, o) in out_row.iter_mut().enumerate() {
                            let mut acc = 0f32;
                            if !p.extrapolated[x] {
                                let taps = p.indices[x * p.window..][..p.window]
                                    .iter()
                                    .zip(&p.weights[x * p.window..][..p.window]);
                                for (&i, &wt) in taps {
                                    if wt != 0.0 {
                                        acc += wt * row[i];
                                    }
                                }
                            }
                            *o = acc;
                        }
                    }
                }
            }
        }
        Ok(tvec![tensor_from(&self.out_shape, out)?])
    }
}

ketang_op!(Resize2d, "KetangResize", |op, inputs| inputs[0]
    .datum_type
    .fact(&*op.out_shape));

/// `a op b` on f32 where one operand repeats along the leading axes of the other (a
/// per-channel constant against channels-last data): `out[i] = a[i] op b[i mod len]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Broadcast {
    op: Arith,
    /// The small operand is the first input.
    small_first: bool,
    out_shape: TVec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

impl EvalOp for Broadcast {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext<'_>, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (a, b) = (plain_f32(&inputs[0])?, plain_f32(&inputs[1])?);
        let (big, small) = if self.small_first { (b, a) } else { (a, b) };
        ensure!(!small.is_empty() && big.len() % small.len() == 0);
        let mut out = big.to_vec();
        match (self.op, self.small_first) {
            (Arith::Add, _) => broadcast(&mut out, small, |x, y| x + y),
            (Arith::Mul, _) => broadcast(&mut out, small, |x, y| x * y),
            (Arith::Sub, false) => broadcast(&mut out, small, |x, y| x - y),
            (Arith::Sub, true) => broadcast(&mut out, small, |x, y| y - x),
            (Arith::Div, false) => broadcast(&mut out, small, |x, y| x / y),
            (Arith::Div, true) => broadcast(&mut out, small, |x, y| y / x),
        }
        Ok(tvec![tensor_from(&self.out_shape, out)?])
    }
}

#[inline(always)]
fn broadcast(out: &mut [f32], small: &[f32], f: impl Fn(f32, f32) -> f32) {
    for chunk in out.chunks_exact_mut(small.len()) {
        for (o, &s) in chunk.iter_mut().zip(small) {
            *o = f(*o, s);
        }
    }
}

ketang_op!(Broadcast, "KetangBroadcast", |op, inputs| inputs[0]
    .datum_type
    .fact(&*op.out_shape));

/// The depthwise convolutions' windows, by node name, read from the decluttered model
/// (tract's optimised depthwise operator keeps its geometry private; node names survive
/// optimisation).
pub(crate) fn depthwise_specs(decluttered: &TypedModel) -> HashMap<String, PoolSpec> {
    decluttered
        .nodes
        .iter()
        .filter_map(|n| {
            let conv = n.op_as::<Conv>()?;
            let depthwise = conv.group > 1
                && conv.group == conv.pool_spec.input_channels
                && conv.group == conv.pool_spec.output_channels
                && conv.q_params.is_none();
            depthwise.then(|| (n.name.clone(), conv.pool_spec.clone()))
        })
        .collect()
}

fn concrete(fact: &TypedFact) -> Option<TVec<usize>> {
    fact.shape.as_concrete().map(|s| s.into())
}

/// The replacement for node `id` of the optimised `model`, if this module covers it.
fn replacement(
    model: &TypedModel,
    id: usize,
    specs: &HashMap<String, PoolSpec>,
) -> TractResult<Option<Box<dyn TypedOp>>> {
    let node = &model.nodes[id];
    let Some(&first) = node.inputs.first() else {
        return Ok(None);
    };
    let in_fact = model.outlet_fact(first)?;
    let out_fact = &node.outputs[0].fact;
    let (Some(shape), Some(out_shape)) = (concrete(in_fact), concrete(out_fact)) else {
        return Ok(None);
    };
    if in_fact.datum_type != f32::datum_type() || out_fact.datum_type != f32::datum_type() {
        return Ok(None);
    }
    let op: Option<Box<dyn TypedOp>> = if node.op.name() == "DepthWiseConv" {
        let (Some(spec), Some(kernel)) = (
            specs.get(&node.name),
            node.inputs.get(1).map(|&o| model.outlet_fact(o)),
        ) else {
            return Ok(None);
        };
        let kernel = kernel?;
        let Some(kshape) = concrete(kernel) else {
            return Ok(None);
        };
        let taps: usize = spec.kernel_shape.iter().product();
        let rank = shape.len();
        let format = match (rank, kshape.as_slice()) {
            (4, &[c, 1, k]) if k == taps && c == shape[1] => Some(DataFormat::NCHW),
            (3, &[c, 1, k]) if k == taps && c == shape[0] => Some(DataFormat::CHW),
            (4, &[1, k, c]) if k == taps && c == shape[3] => Some(DataFormat::NHWC),
            (3, &[1, k, c]) if k == taps && c == shape[2] => Some(DataFormat::HWC),
            _ => None,
        };
        // tract's own kernel is as fast for stride 1 over channel-first planes from 28
        // columns up (measured node by node on the five models): keep it there.
        format
            .and_then(|f| Window::new(spec, f, &shape))
            .filter(|win| win.channels_last || win.sh > 1 || win.sw > 1 || win.ow <= 24)
            .map(|win| Box::new(Depthwise { win }) as _)
    } else if let Some(pool) = node.op_as::<OptMaxPool>() {
        let format = pool.pool_spec.data_format;
        if pool.with_index_outputs.is_some() || format.c_is_last() {
            return Ok(None);
        }
        Window::new(&pool.pool_spec, format, &shape).map(|win| Box::new(MaxPool { win }) as _)
    } else if let Some(pad) = node.op_as::<Pad>() {
        let PadMode::Constant(value) = &pad.mode else {
            return Ok(None);
        };
        let value = value.cast_to_scalar::<f32>()?;
        (pad.pads.len() == shape.len()).then(|| {
            Box::new(ConstPad {
                shape: shape.clone(),
                pads: pad.pads.clone(),
                value_bits: value.to_bits(),
            }) as _
        })
    } else if let Some(resize) = node.op_as::<Resize>() {
        let r = shape.len();
        let scales = resize
            .optional_scales_input
            .and_then(|i| node.inputs.get(i))
            .map(|&o| model.outlet_fact(o))
            .transpose()?
            .and_then(|f| f.konst.clone());
        let scales: Option<TVec<f32>> = scales
            .filter(|s| s.len() == r && resize.optional_sizes_input.is_none())
            .map(|s| -> TractResult<TVec<f32>> {
                Ok(s.cast_to::<f32>()?
                    .try_as_plain_ram()?
                    .as_slice::<f32>()?
                    .into())
            })
            .transpose()?;
        let fits =
            |s: &TVec<f32>| r >= 2 && (0..r - 2).all(|a| shape[a] == out_shape[a] && s[a] == 1.0);
        scales.filter(fits).map(|s| {
            Box::new(Resize2d {
                inner: resize.clone(),
                shape: shape.clone(),
                out_shape: out_shape.clone(),
                scales_bits: s.iter().map(|v| v.to_bits()).collect(),
            }) as _
        })
    } else if let Some(bin) = node.op_as::<TypedBinOp>() {
        let op = match bin.0.name() {
            "Add" => Arith::Add,
            "Sub" => Arith::Sub,
            "Mul" => Arith::Mul,
            "Div" => Arith::Div,
            _ => return Ok(None),
        };
        if bin.1.is_some() || node.inputs.len() != 2 {
            return Ok(None);
        }
        let Some(other) = concrete(model.outlet_fact(node.inputs[1])?) else {
            return Ok(None);
        };
        if model.outlet_fact(node.inputs[1])?.datum_type != f32::datum_type() {
            return Ok(None);
        }
        // The small operand's shape, leading ones dropped, must be the big one's tail.
        let repeats = |small: &[usize], big: &[usize]| {
            let lead = small.iter().take_while(|&&d| d == 1).count();
            let tail = &small[lead..];
            small.len() == big.len()
                && tail.len() < big.len()
                && big.ends_with(tail)
                && small.iter().product::<usize>() < big.iter().product::<usize>()
        };
        let small_first = if repeats(&other, &shape) && *shape == *out_shape {
            Some(false)
        } else if repeats(&shape, &other) && *other == *out_shape {
            Some(true)
        } else {
            None
        };
        small_first.map(|small_first| {
            Box::new(Broadcast {
                op,
                small_first,
                out_shape: out_shape.clone(),
            }) as _
        })
    } else {
        None
    };
    // Only a like-for-like swap: the same output shape as the node it replaces.
    if let Some(op) = &op {
        let ins: TVec<&TypedFact> = node
            .inputs
            .iter()
            .map(|&o| model.outlet_fact(o))
            .collect::<TractResult<_>>()?;
        let facts = op.output_facts(&ins)?;
        if facts.len() != 1 || facts[0].shape.as_concrete() != Some(&*out_shape) {
            return Ok(None);
        }
    }
    Ok(op)
}

/// Swaps the nodes of the optimised `model` that this module evaluates faster, and fuses
/// PReLU; returns how many nodes changed.
pub(crate) fn accelerate(
    model: &mut TypedModel,
    specs: &HashMap<String, PoolSpec>,
) -> TractResult<usize> {
    let mut swapped = 0;
    for id in 0..model.nodes.len() {
        if let Some(op) = replacement(model, id, specs)? {
            model.nodes[id].op = op;
            swapped += 1;
        }
    }
    let fused = fuse_pad_maxpool(model)? + fuse_prelu(model)?;
    if fused > 0 {
        *model = std::mem::take(model).into_compact()?;
    }
    Ok(swapped + fused)
}

/// A −∞ padding feeding a max pooling (NanoDet's stem) becomes the pooling's own padding:
/// padded cells never win, so the tensor need not be padded at all.
fn fuse_pad_maxpool(model: &mut TypedModel) -> TractResult<usize> {
    let mut fused = 0;
    for id in 0..model.nodes.len() {
        let node = &model.nodes[id];
        let (Some(pool), Some(&input)) = (node.op_as::<MaxPool>(), node.inputs.first()) else {
            continue;
        };
        let pad_node = &model.nodes[input.node];
        let Some(pad) = pad_node.op_as::<ConstPad>() else {
            continue;
        };
        let win = &pool.win;
        let r = pad.shape.len();
        let only_spatial = pad.pads[..r - 2].iter().all(|&p| p == (0, 0));
        if f32::from_bits(pad.value_bits) != f32::NEG_INFINITY
            || !only_spatial
            || win.channels_last
            || win.shape.len() != r
            || pad_node.outputs[0].successors.len() != 1
        {
            continue;
        }
        let ((pt, _), (pl, _)) = (pad.pads[r - 2], pad.pads[r - 1]);
        let unpadded = Window {
            shape: pad.shape.clone(),
            h: pad.shape[r - 2],
            w: pad.shape[r - 1],
            pt: win.pt + pt,
            pl: win.pl + pl,
            ..win.clone()
        };
        let source = pad_node.inputs[0];
        let mut patch = TypedModelPatch::default();
        let tap = patch.tap_model(model, source)?;
        let name = format!("{}.unpadded", node.name);
        let wire = patch.wire_node(name, MaxPool { win: unpadded }, &[tap])?;
        patch.shunt_outside(model, OutletId::new(id, 0), wire[0])?;
        patch.apply(model)?;
        fused += 1;
    }
    Ok(fused)
}

/// PReLU as tract leaves it after optimising a TensorFlow export: three passes over the
/// tensor (`Abs`; `(x − |x|) · a`; `max(x, 0) + …`). [`PRelu`] does the same arithmetic
/// in one pass.
fn fuse_prelu(model: &mut TypedModel) -> TractResult<usize> {
    let mut fused = 0;
    for id in 0..model.nodes.len() {
        let Some((x, alpha, plan)) = prelu_at(model, id)? else {
            continue;
        };
        let mut patch = TypedModelPatch::default();
        let x = patch.tap_model(model, x)?;
        let alpha = patch.tap_model(model, alpha)?;
        let name = format!("{}.prelu", model.nodes[id].name);
        let wire = patch.wire_node(name, PRelu { plan }, &[x, alpha])?;
        patch.shunt_outside(model, OutletId::new(id, 0), wire[0])?;
        patch.apply(model)?;
        fused += 1;
    }
    Ok(fused)
}

fn konst_of(model: &TypedModel, o: OutletId) -> Option<Arc<Tensor>> {
    model.outlet_fact(o).ok()?.konst.clone()
}

/// If node `id` ends a PReLU over f32 `x`: `x`, the slope constant and how the slope
/// repeats over `x` (`(inner, len)`: element `i` uses `a[(i / inner) % len]`).
#[allow(clippy::type_complexity)]
fn prelu_at(
    model: &TypedModel,
    id: usize,
) -> TractResult<Option<(OutletId, OutletId, (usize, usize))>> {
    let node = &model.nodes[id];
    if node.op.name() != "OptBinChain(Max+Add)" || node.inputs.len() != 3 {
        return Ok(None);
    }
    let (x, zero, t) = (node.inputs[0], node.inputs[1], node.inputs[2]);
    let is_zero = konst_of(model, zero)
        .is_some_and(|z| z.len() == 1 && z.cast_to_scalar::<f32>().is_ok_and(|v| v == 0.0));
    let t_node = &model.nodes[t.node];
    if !is_zero || t.slot != 0 || t_node.op.name() != "OptBinChain(Sub+Mul)" {
        return Ok(None);
    }
    let [tx, abs, alpha] = t_node.inputs[..] else {
        return Ok(None);
    };
    let abs_node = &model.nodes[abs.node];
    if tx != x || abs.slot != 0 || abs_node.op.name() != "Abs" || abs_node.inputs[..] != [x] {
        return Ok(None);
    }
    let fx = model.outlet_fact(x)?;
    let (Some(xs), Some(a)) = (concrete(fx), konst_of(model, alpha)) else {
        return Ok(None);
    };
    if fx.datum_type != f32::datum_type() || a.datum_type() != f32::datum_type() {
        return Ok(None);
    }
    // The slope's dims, right-aligned to x's: one block of non-1 dims equal to x's there.
    let ashape = a.shape();
    if ashape.len() > xs.len() {
        return Ok(None);
    }
    let aligned: TVec<usize> = std::iter::repeat_n(1, xs.len() - ashape.len())
        .chain(ashape.iter().copied())
        .collect();
    let non1: TVec<usize> = (0..xs.len()).filter(|&d| aligned[d] != 1).collect();
    let plan = match (non1.first(), non1.last()) {
        (None, _) | (_, None) => (1, 1),
        (Some(&lo), Some(&hi)) => {
            if (lo..=hi).any(|d| aligned[d] != xs[d]) {
                return Ok(None);
            }
            (
                xs[hi + 1..].iter().product(),
                aligned[lo..=hi].iter().product(),
            )
        }
    };
    Ok(Some((x, alpha, plan)))
}

/// `max(x, 0) + (x − |x|) · a` with a per-channel slope `a` (inputs: `x`, `a`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PRelu {
    /// Element `i` uses `a[(i / inner) % len]`.
    plan: (usize, usize),
}

impl EvalOp for PRelu {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext<'_>, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (x, a) = (plain_f32(&inputs[0])?, plain_f32(&inputs[1])?);
        let (inner, len) = self.plan;
        ensure!(a.len() == len && inner > 0 && x.len() % (inner * len) == 0);
        let mut out = vec![0f32; x.len()];
        let f = |o: &mut f32, v: f32, s: f32| *o = v.max(0.0) + (v - v.abs()) * s;
        if inner == 1 {
            for (o, x) in out.chunks_exact_mut(len).zip(x.chunks_exact(len)) {
                for ((o, &v), &s) in o.iter_mut().zip(x).zip(a) {
                    f(o, v, s);
                }
            }
        } else {
            for (i, (o, x)) in out
                .chunks_exact_mut(inner)
                .zip(x.chunks_exact(inner))
                .enumerate()
            {
                let s = a[i % len];
                for (o, &v) in o.iter_mut().zip(x) {
                    f(o, v, s);
                }
            }
        }
        Ok(tvec![tensor_from(inputs[0].shape(), out)?])
    }
}

ketang_op!(PRelu, "KetangPRelu", |_op, inputs| inputs[0]
    .without_value());

/// Clears the upper halves of the AVX registers (`vzeroupper`) where the CPU has AVX2.
///
/// tract 0.23's assembly matrix kernels return without it, and until it runs every SSE
/// instruction that follows (tract's own operators written in Rust, ours outside
/// [`pulp`] dispatch) pays a state-transition penalty: measured here, compiled loops ran
/// 3× slower after a kernel than before. `runtime` calls this after every node.
#[inline]
pub fn clear_upper_avx() {
    #[cfg(target_arch = "x86_64")]
    {
        static V3: std::sync::OnceLock<Option<pulp::x86::V3>> = std::sync::OnceLock::new();
        if let Some(v3) = V3.get_or_init(pulp::x86::V3::try_new) {
            v3.avx._mm256_zeroupper();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn window(
        c: usize,
        h: usize,
        w: usize,
        k: (usize, usize),
        s: (usize, usize),
        pads: [usize; 4],
        last: bool,
    ) -> Window {
        let [pt, pl, pb, pr] = pads;
        Window {
            shape: if last { tvec![h, w, c] } else { tvec![c, h, w] },
            channels_last: last,
            n: 1,
            c,
            h,
            w,
            oh: (h + pt + pb - k.0) / s.0 + 1,
            ow: (w + pl + pr - k.1) / s.1 + 1,
            kh: k.0,
            kw: k.1,
            sh: s.0,
            sw: s.1,
            pt,
            pl,
        }
    }

    /// The textbook definition, one output at a time, on channel-first data.
    fn naive(win: &Window, x: &[f32], k: &[f32], b: &[f32], max: bool) -> Vec<f32> {
        let mut out = vec![];
        for c in 0..win.c {
            for oy in 0..win.oh {
                for ox in 0..win.ow {
                    let mut acc = if max { f32::NEG_INFINITY } else { b[c] };
                    for ky in 0..win.kh {
                        for kx in 0..win.kw {
                            let iy = (oy * win.sh + ky) as isize - win.pt as isize;
                            let ix = (ox * win.sw + kx) as isize - win.pl as isize;
                            if iy < 0 || ix < 0 || iy >= win.h as isize || ix >= win.w as isize {
                                continue;
                            }
                            let v = x[(c * win.h + iy as usize) * win.w + ix as usize];
                            if max {
                                acc = acc.max(v);
                            } else {
                                acc += k[(c * win.kh + ky) * win.kw + kx] * v;
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
        out
    }

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 104_729) % 211) as f32 / 105.0 - 1.0)
            .collect()
    }

    fn tv(shape: &[usize], v: &[f32]) -> TValue {
        Tensor::from_shape(shape, v).unwrap().into()
    }

    fn out_of(r: TVec<TValue>) -> Vec<f32> {
        plain_f32(&r[0]).unwrap().to_vec()
    }

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                "{what}: [{i}] {x} vs {y}"
            );
        }
    }

    /// HWC copy of CHW data.
    fn to_last(x: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
        let mut o = vec![0.0; x.len()];
        for ch in 0..c {
            for p in 0..h * w {
                o[p * c + ch] = x[ch * h * w + p];
            }
        }
        o
    }

    #[test]
    fn depthwise_matches_the_definition_for_strides_pads_sizes_and_layouts() {
        let ctx = EvalContext::out_of_plan();
        let cases = [
            ((3, 3), (2, 2), [0, 0, 1, 1]), // TensorFlow SAME, stride 2 (the models' case)
            ((3, 3), (1, 1), [1, 1, 1, 1]),
            ((3, 3), (2, 2), [1, 1, 1, 1]),
            ((3, 3), (3, 3), [0, 2, 1, 0]),
            ((5, 5), (2, 2), [2, 2, 2, 2]), // the general path
            ((2, 3), (1, 2), [0, 1, 1, 0]),
        ];
        for (k, s, pads) in cases {
            for (c, h, w) in [(3, 7, 9), (4, 12, 12), (2, 2, 5)] {
                if h + pads[0] + pads[2] < k.0 || w + pads[1] + pads[3] < k.1 {
                    continue;
                }
                let win = window(c, h, w, k, s, pads, false);
                let x = values(c * h * w, 1);
                let kern = values(c * k.0 * k.1, 2);
                let b = values(c, 3);
                let want = naive(&win, &x, &kern, &b, false);
                let op = Depthwise { win: win.clone() };
                let got = op
                    .eval(
                        &ctx,
                        tvec![
                            tv(&[c, h, w], &x),
                            tv(&[c, 1, k.0 * k.1], &kern),
                            tv(&[c, 1, 1], &b)
                        ],
                    )
                    .unwrap();
                close(
                    &out_of(got),
                    &want,
                    &format!("CHW {k:?} {s:?} {pads:?} {c}x{h}x{w}"),
                );
                // Channels last: kernel [1, taps, C], output HWC.
                let last = window(c, h, w, k, s, pads, true);
                let kl = to_last(&kern, c, k.0, k.1);
                let got = Depthwise { win: last }
                    .eval(
                        &ctx,
                        tvec![
                            tv(&[h, w, c], &to_last(&x, c, h, w)),
                            tv(&[1, k.0 * k.1, c], &kl),
                            tv(&[c], &b)
                        ],
                    )
                    .unwrap();
                close(
                    &out_of(got),
                    &to_last(&want, c, win.oh, win.ow),
                    &format!("HWC {k:?} {s:?} {pads:?}"),
                );
                let got = MaxPool { win: win.clone() }
                    .eval(&ctx, tvec![tv(&[c, h, w], &x)])
                    .unwrap();
                close(
                    &out_of(got),
                    &naive(&win, &x, &kern, &b, true),
                    &format!("max {k:?} {s:?} {pads:?}"),
                );
            }
        }
    }

    #[test]
    fn pad_broadcast_and_prelu_match_their_definitions() {
        let ctx = EvalContext::out_of_plan();
        let x = values(2 * 3 * 4, 5);
        let pad = ConstPad {
            shape: tvec![2, 3, 4],
            pads: vec![(0, 1), (2, 0), (1, 2)],
            value_bits: (-7f32).to_bits(),
        };
        let got = out_of(pad.eval(&ctx, tvec![tv(&[2, 3, 4], &x)]).unwrap());
        assert_eq!(got.len(), 3 * 5 * 7);
        for a in 0..3 {
            for b in 0..5 {
                for c in 0..7 {
                    let inside = a < 2 && (2..5).contains(&b) && (1..5).contains(&c);
                    let want = if inside {
                        x[(a * 3 + b - 2) * 4 + c - 1]
                    } else {
                        -7.0
                    };
                    assert_eq!(got[(a * 5 + b) * 7 + c], want, "{a},{b},{c}");
                }
            }
        }
        let small = [2.0f32, -1.0, 0.5, 4.0];
        for (small_first, want) in [(false, x[5] - small[1]), (true, small[1] - x[5])] {
            let op = Broadcast {
                op: Arith::Sub,
                small_first,
                out_shape: tvec![6, 4],
            };
            let ins = if small_first {
                tvec![tv(&[1, 4], &small), tv(&[6, 4], &x)]
            } else {
                tvec![tv(&[6, 4], &x), tv(&[1, 4], &small)]
            };
            assert_eq!(out_of(op.eval(&ctx, ins).unwrap())[5], want);
        }
        // Channel-first slope over [2, 3, 4]: inner 12... per channel of axis 0.
        let slope = [0.1f32, 0.3];
        let got = out_of(
            PRelu { plan: (12, 2) }
                .eval(&ctx, tvec![tv(&[2, 3, 4], &x), tv(&[2, 1, 1], &slope)])
                .unwrap(),
        );
        for (i, (&g, &v)) in got.iter().zip(&x).enumerate() {
            let s = slope[i / 12];
            assert!(
                (g - if v >= 0.0 { v } else { 2.0 * s * v }).abs() < 1e-6,
                "{i}"
            );
        }
    }
}
