//! Helm-compatible chart rendering: values read as Helm reads them,
//! toYaml/toJson printed as Go prints them, sprig's and Helm's functions.

pub mod chart;
pub mod deps;
pub mod engine;
pub mod files;
pub mod funcs;
pub mod ignore;
pub mod json;
pub mod manifest;
pub mod release;
pub mod schema;
mod schema_errors;
pub mod semver;
pub mod values;
pub mod yaml;
