//! Linux glue: the kernel interfaces the drivers of `ketang-drivers` run on.

pub(crate) mod camera;
pub(crate) mod gpio;
pub(crate) mod microphone;
pub(crate) mod serial;
pub(crate) mod spi;
pub(crate) mod thermometer;
pub(crate) mod wedge;
