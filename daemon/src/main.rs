//! ketangd
mod config;
fn main() {}
