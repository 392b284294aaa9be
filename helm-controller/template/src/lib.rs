//! Go's text/template, in Rust, with the semantics Helm relies on: the
//! grammar (trim markers, comments, variables and assignment, if/else-if,
//! range over lists, sorted maps and ints with break/continue, with/else,
//! define/template/block), missingkey=zero, float64 printing (`1e+06`),
//! the builtin functions and fmt verbs, and Go's error messages.
//!
//! ```
//! use k3r_gotemplate::{Template, Value};
//! let mut t = Template::new();
//! t.parse("t", "{{ range $k, $v := . }}{{ $k }}={{ $v }} {{ end }}").unwrap();
//! let data: std::collections::BTreeMap<String, Value> =
//!     [("b".to_string(), Value::Int(2)), ("a".to_string(), Value::Float(1e6))].into();
//! assert_eq!(t.execute("t", data.into()).unwrap(), "a=1e+06 b=2 ");
//! ```

mod ast;
mod exec;
pub mod fmt;
mod funcs;
mod lex;
mod number;
mod parse;
mod template;
mod value;

pub use exec::{Exec, map_of};
pub use funcs::{compare, eq, length, wrong_type};
pub use template::{Func, FuncError, Template};
pub use value::{MapRef, Object, Value, exp_form, format_float_g, shortest_digits};

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum Error {
    /// "template: NAME:LINE: message"
    #[error("template: {name}:{line}: {message}")]
    Parse {
        name: String,
        line: usize,
        message: String,
    },
    /// "template: NAME:LINE:COL: executing \"NAME\" at <context>: message"
    #[error("template: {location}: executing {name:?} at <{context}>: {message}")]
    Exec {
        location: String,
        name: String,
        context: String,
        message: String,
    },
    #[error("template: no template {0:?} associated with template")]
    NoTemplate(String),
}
