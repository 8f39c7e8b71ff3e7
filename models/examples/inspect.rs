//! Prints each ONNX model's inputs and outputs as tract sees them.
//!
//! `cargo run -p ketang-models --example inspect -- MODEL.onnx...`
#![allow(clippy::print_stdout, clippy::unwrap_used)]
use tract_onnx::prelude::*;

fn main() -> TractResult<()> {
    for p in std::env::args().skip(1) {
        let m = tract_onnx::onnx().model_for_path(&p)?;
        println!("{p}");
        for (i, o) in m.inputs.iter().enumerate() {
            println!(
                "  in  {i} {:?} {:?}",
                m.node(o.node).name,
                m.outlet_fact(*o)?
            );
        }
        for (i, o) in m.outputs.iter().enumerate() {
            println!(
                "  out {i} {:?} {:?}",
                m.node(o.node).name,
                m.outlet_fact(*o)?
            );
        }
    }
    Ok(())
}
