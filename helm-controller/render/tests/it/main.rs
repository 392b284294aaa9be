//! The renderer against real Helm: the same chart rendered by both must
//! give byte-identical files.

mod charts;
mod crypto;
mod functions;
mod harness;
mod toml;
mod toyaml;
