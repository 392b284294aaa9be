//! The renderer against real Helm: the same chart rendered by both must
//! give byte-identical files.

mod charts;
mod functions;
mod harness;
mod toyaml;
