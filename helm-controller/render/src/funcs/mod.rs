//! The function map Helm gives templates: Go's builtins, sprig (minus env
//! and expandenv) and Helm's own.

mod args;
mod collections;
mod conv;
mod crypto;
mod dates;
mod encoding;
mod helm;
mod paths;
mod random;
mod regex;
mod strings;
mod toml;
mod url;

use k3r_gotemplate::Template;

pub use helm::SET_NAME;

/// An empty template set with every function registered.
pub fn helm_template() -> Template {
    let mut t = Template::new();
    strings::register(&mut t);
    collections::register(&mut t);
    conv::register(&mut t);
    crypto::register(&mut t);
    encoding::register(&mut t);
    dates::register(&mut t);
    random::register(&mut t);
    regex::register(&mut t);
    toml::register(&mut t);
    paths::register(&mut t);
    url::register(&mut t);
    helm::register(&mut t);
    t
}
