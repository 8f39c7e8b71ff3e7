//! Loading ONNX models into tract with fixed input shapes (batch 1: tract is several times
//! faster with concrete shapes), and checking what comes out.

use std::path::{Path, PathBuf};

use tract_onnx::prelude::*;

use crate::error::{ModelError, Result};

/// Whose code evaluates the operators `kernels` covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// `kernels`' operators where they apply (the default).
    Ketang,
    /// tract's own everywhere (for comparisons).
    Tract,
}

/// A loaded, optimised model.
pub(crate) struct Model {
    pub(crate) plan: std::sync::Arc<TypedSimplePlan>,
    pub(crate) path: PathBuf,
    name: String,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Model({})", self.path.display())
    }
}

impl Model {
    /// Loads `path` with each input fixed to `inputs` (type, shape), and checks it has at
    /// least `min_outputs` outputs.
    pub(crate) fn load(
        path: &Path,
        inputs: &[(DatumType, &[usize])],
        min_outputs: usize,
    ) -> Result<Self> {
        Self::load_with(path, inputs, min_outputs, Kernels::Ketang)
    }

    /// [`Model::load`], choosing whose kernels run the slow operators (see `kernels`).
    pub(crate) fn load_with(
        path: &Path,
        inputs: &[(DatumType, &[usize])],
        min_outputs: usize,
        kernels: Kernels,
    ) -> Result<Self> {
        if !path.is_file() {
            return Err(ModelError::Load {
                path: path.to_owned(),
                reason: "no such file (see docs/models.md for how to obtain the models)".into(),
            });
        }
        // tract can panic on models whose shapes contradict the facts set here (seen:
        // arithmetic overflow in its shape algebra): a wrong or corrupt model must be an
        // error naming the file, never a crashed inference thread.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Self::load_unchecked(path, inputs, min_outputs, kernels)
        }))
        .unwrap_or_else(|_| {
            Err(ModelError::Shape {
                path: path.to_owned(),
                what: format!(
                    "tract failed on it with inputs {inputs:?} (wrong model for this pipeline?)"
                ),
            })
        })
    }

    fn load_unchecked(
        path: &Path,
        inputs: &[(DatumType, &[usize])],
        min_outputs: usize,
        kernels: Kernels,
    ) -> Result<Self> {
        let load_err = |e: TractError| ModelError::Load {
            path: path.to_owned(),
            reason: format!("{e:#}"),
        };
        let mut m = tract_onnx::onnx().model_for_path(path).map_err(load_err)?;
        let n_in = m.inputs.len();
        if n_in != inputs.len() {
            return Err(ModelError::Shape {
                path: path.to_owned(),
                what: format!("has {n_in} inputs, this pipeline feeds {}", inputs.len()),
            });
        }
        for (i, (dt, shape)) in inputs.iter().enumerate() {
            m.set_input_fact(i, InferenceFact::dt_shape(*dt, *shape))
                .map_err(load_err)?;
        }
        let shape_err = |e: TractError| ModelError::Shape {
            path: path.to_owned(),
            what: format!("does not take inputs {inputs:?}: {e:#}"),
        };
        let decluttered = m
            .into_typed()
            .and_then(|t| t.into_decluttered())
            .map_err(shape_err)?;
        let specs = crate::kernels::depthwise_specs(&decluttered);
        let mut typed = decluttered.into_optimized().map_err(shape_err)?;
        if kernels == Kernels::Ketang {
            // Ketang's kernels are an optimisation: if swapping them in fails (or panics) on
            // some model, tract's own plan still runs it.
            let mut fast = typed.clone();
            let swapped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                crate::kernels::accelerate(&mut fast, &specs)
            }));
            match swapped {
                Ok(Ok(n)) => {
                    tracing::debug!(model = %path.display(), nodes = n, "faster kernels swapped in");
                    typed = fast;
                }
                Ok(Err(e)) => tracing::warn!(
                    model = %path.display(), error = %format!("{e:#}"),
                    "Ketang's kernels not used for this model; tract's own run it"
                ),
                Err(_) => tracing::warn!(
                    model = %path.display(),
                    "Ketang's kernels panicked on this model; tract's own run it"
                ),
            }
        }
        let n_out = typed.outputs.len();
        if n_out < min_outputs {
            return Err(ModelError::Shape {
                path: path.to_owned(),
                what: format!("has {n_out} outputs, expected at least {min_outputs}"),
            });
        }
        let plan = typed.into_runnable().map_err(load_err)?;
        Ok(Self {
            plan,
            path: path.to_owned(),
            name: path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        })
    }

    /// Runs the model.
    pub(crate) fn run(&self, inputs: TVec<TValue>) -> Result<TVec<TValue>> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_plan(&self.plan, inputs)
        }))
        .unwrap_or_else(|_| Err(anyhow_panic()))
        .map_err(|e| ModelError::Run {
            model: self.name.clone(),
            reason: format!("{e:#}"),
        })
    }

    /// Output `i` as f32 values, checking it has `len` of them.
    pub(crate) fn floats(&self, out: &TVec<TValue>, i: usize, len: usize) -> Result<Vec<f32>> {
        let t = out
            .get(i)
            .ok_or_else(|| self.shape(format!("no output {i}")))?;
        let view = t
            .try_as_plain_ram()
            .map_err(|e| self.shape(format!("output {i}: {e}")))?;
        let s = view
            .as_slice::<f32>()
            .map_err(|e| self.shape(format!("output {i} is not f32: {e}")))?;
        if s.len() != len {
            return Err(self.shape(format!(
                "output {i} has {} values ({:?}), expected {len}",
                s.len(),
                t.shape()
            )));
        }
        Ok(s.to_vec())
    }

    /// The shape of output `i`.
    pub(crate) fn out_shape(out: &TVec<TValue>, i: usize) -> Vec<usize> {
        out.get(i).map(|t| t.shape().to_vec()).unwrap_or_default()
    }

    fn shape(&self, what: String) -> ModelError {
        ModelError::Shape {
            path: self.path.clone(),
            what,
        }
    }
}

fn anyhow_panic() -> TractError {
    TractError::msg("tract panicked running the model")
}

/// The optimised plan Ketang runs for the model at `path` with inputs fixed to `inputs`,
/// for benchmarks and profiles (`models/examples/`).
pub fn optimised_plan(
    path: &Path,
    inputs: &[(DatumType, &[usize])],
    kernels: Kernels,
) -> Result<std::sync::Arc<TypedSimplePlan>> {
    Model::load_with(path, inputs, 1, kernels).map(|m| m.plan)
}

/// Runs `plan` once as Ketang does: tract's evaluation, node by node, with the AVX state
/// cleared after each (see `kernels::clear_upper_avx`).
pub fn run_plan(
    plan: &std::sync::Arc<TypedSimplePlan>,
    inputs: TVec<TValue>,
) -> TractResult<TVec<TValue>> {
    let mut state = plan.spawn()?;
    state.run_plan_with_eval(inputs, |ctx, op_state, node, input| {
        let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, input);
        crate::kernels::clear_upper_avx();
        out
    })
}
