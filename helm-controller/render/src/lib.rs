//! Helm-compatible chart rendering: values read as Helm reads them,
//! toYaml/toJson printed as Go prints them, sprig's and Helm's functions.

pub mod engine;
pub mod funcs;
pub mod json;
pub mod values;
pub mod yaml;
