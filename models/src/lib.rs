//! On-device inference for the classroom, with tract-onnx: face detection (BlazeFace),
//! face embeddings (MobileFaceNet-class) and gallery matching, pose keypoints (MoveNet) with
//! classroom behaviour rules, voice activity (silero VAD) for talk-time analysis, and whose voice it is (Resemblyzer).
//!
//! Everything here is synchronous and owns no threads (docs/development.md §2): the daemon runs
//! these pipelines on its one inference thread. Frames, crops and face templates never
//! leave this process through this crate: it returns boxes, scores, keypoints and
//! embeddings to the caller, which decides what is stored (on the device) and what is
//! reported (class-level aggregates).
//!
//! Models are loaded from files (see `docs/models.md` for each one's source, licence,
//! input and preprocessing); every load checks the model's input and output shapes and
//! names the file in its error.

mod error;
mod frame;
mod kernels;
mod runtime;

pub mod behaviour;
pub mod expression;
pub mod face;
pub mod gallery;
pub mod person;
pub mod pose;
pub mod track;
pub mod vad;
pub mod voice;

pub use error::{ModelError, Result};
pub use frame::{Frame, MAX_DECODE_BYTES, MAX_DECODE_SIDE, MIN_SIDE, png_header_only};
pub use kernels::clear_upper_avx;
pub use runtime::{Kernels, optimised_plan, run_plan};
