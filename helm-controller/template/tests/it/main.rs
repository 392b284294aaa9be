//! Integration tests: the engine against real Helm.

mod differential;
mod oracle;
