//! Where tract spends its time on one model: each node of the optimised plan timed over RUNS
//! runs (after warm-ups), the costliest nodes and the totals per operator printed. For
//! working on `bench/models.sh`'s ratios.
//!
//! `cargo run --release -p ketang-models --example profile -- MODEL.onnx f32:1,128,128,3 [RUNS]`
//! (several inputs: one `type:shape` argument each; types `f32`, `i32`). `KERNELS=tract`
//! profiles tract's own kernels only; `KEEP_AVX=1` leaves out Ketang's
//! `vzeroupper` after each node; `TOP=N` lists N nodes (25); `DUMP=A-B` prints nodes A..B of
//! the plan with their inputs.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::time::Instant;

use ketang_models::{Kernels, clear_upper_avx, optimised_plan};
use tract_onnx::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = &args[0];
    let mut specs = vec![];
    let mut runs = 50usize;
    for a in &args[1..] {
        if let Some((t, s)) = a.split_once(':') {
            let shape: Vec<usize> = s.split(',').map(|d| d.parse().unwrap()).collect();
            let dt = if t == "i32" {
                i32::datum_type()
            } else {
                f32::datum_type()
            };
            specs.push((dt, shape));
        } else {
            runs = a.parse().unwrap();
        }
    }
    let mut inputs: TVec<TValue> = tvec![];
    for (dt, shape) in &specs {
        let n: usize = shape.iter().product();
        let t = if *dt == i32::datum_type() {
            let v: Vec<i32> = (0..n).map(|i| ((i * 7919) % 255) as i32).collect();
            Tensor::from_shape(shape, &v).unwrap()
        } else {
            let v: Vec<f32> = (0..n).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect();
            Tensor::from_shape(shape, &v).unwrap()
        };
        inputs.push(t.into());
    }
    let kernels = if std::env::var("KERNELS").as_deref() == Ok("tract") {
        Kernels::Tract
    } else {
        Kernels::Ketang
    };
    let facts: Vec<(DatumType, &[usize])> = specs.iter().map(|(d, s)| (*d, s.as_slice())).collect();
    let plan = optimised_plan(std::path::Path::new(path), &facts, kernels).unwrap();
    if let Ok(range) = std::env::var("DUMP") {
        let (a, b) = range.split_once('-').unwrap();
        let m = plan.model();
        for id in a.parse::<usize>().unwrap()..b.parse::<usize>().unwrap() {
            let n = &m.nodes[id];
            println!(
                "#{id} {} {:?} <- {:?} : {}",
                n.name,
                n.op.name(),
                n.inputs,
                format!("{:?}", n.op).chars().take(200).collect::<String>()
            );
        }
    }
    let mut state = plan.spawn().unwrap();
    for _ in 0..3 {
        state.run(inputs.clone()).unwrap();
    }
    let mut per_node: HashMap<usize, f64> = HashMap::new();
    let t0 = Instant::now();
    for _ in 0..runs {
        state
            .run_plan_with_eval(inputs.clone(), |ctx, st, node, input| {
                let t = Instant::now();
                let r = tract_onnx::tract_core::plan::eval(ctx, st, node, input);
                if std::env::var("KEEP_AVX").is_err() {
                    clear_upper_avx();
                }
                *per_node.entry(node.id).or_default() += t.elapsed().as_secs_f64();
                r
            })
            .unwrap();
    }
    let wall = t0.elapsed().as_secs_f64() * 1000.0 / runs as f64;
    let model = plan.model();
    let mut rows: Vec<(usize, f64)> = per_node.into_iter().collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = rows.iter().map(|r| r.1).sum::<f64>() * 1000.0 / runs as f64;
    println!(
        "{path}: {wall:.3} ms per run (nodes {total:.3} ms), {} nodes",
        model.nodes.len()
    );
    let mut per_op: HashMap<String, (f64, usize)> = HashMap::new();
    for (id, s) in &rows {
        let e = per_op
            .entry(model.nodes[*id].op.name().to_string())
            .or_default();
        e.0 += s;
        e.1 += 1;
    }
    let mut ops: Vec<_> = per_op.into_iter().collect();
    ops.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
    for (op, (s, n)) in ops {
        println!(
            "  {:7.3} ms {:5.1}%  {n:4}× {op}",
            s * 1000.0 / runs as f64,
            s * 100000.0 / runs as f64 / total
        );
    }
    println!("costliest nodes:");
    let top = std::env::var("TOP").map_or(25, |t| t.parse().unwrap());
    for (id, s) in rows.iter().take(top) {
        let n = &model.nodes[*id];
        let ins: Vec<String> = n
            .inputs
            .iter()
            .map(|o| format!("{:?}", model.outlet_fact(*o).unwrap().shape))
            .collect();
        println!(
            "  {:7.3} ms  #{id} {} [{}] -> {:?}\n             {}",
            s * 1000.0 / runs as f64,
            n.op.name(),
            ins.join(", "),
            n.outputs[0].fact.shape,
            format!("{:?}", n.op).chars().take(300).collect::<String>()
        );
    }
}
