//! The renderer against real Helm: the same chart rendered by both must
//! give byte-identical files.

mod charts;
mod completeness;
mod crypto;
mod functions;
mod harness;
mod helmignore;
mod names;
mod schema;
mod toml;
mod toyaml;
