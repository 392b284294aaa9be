//! A set of named templates sharing one function map, as Go's
//! *template.Template: parse several texts, then execute any of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::Error;
use crate::ast::Node;
use crate::exec::Exec;
use crate::funcs::builtins;
use crate::parse::parse;
use crate::value::Value;

/// A template function: gets the execution (to run other templates) and
/// its arguments.
pub type Func = Arc<dyn Fn(&mut Exec<'_>, &[Value]) -> Result<Value, FuncError> + Send + Sync>;

/// How a function failed, which decides Go's message.
#[derive(Debug, Clone, PartialEq)]
pub enum FuncError {
    /// The function returned an error: "error calling NAME: ...".
    Call(String),
    /// An argument could not be converted to the parameter's type (Go
    /// reports these without "error calling").
    Arg(String),
}

impl From<String> for FuncError {
    fn from(message: String) -> Self {
        FuncError::Call(message)
    }
}

impl From<&str> for FuncError {
    fn from(message: &str) -> Self {
        FuncError::Call(message.to_string())
    }
}

#[derive(Clone)]
struct Tree {
    nodes: Arc<Vec<Node>>,
    /// The text it was parsed from (`define`s keep their file's name).
    parse_name: String,
}

#[derive(Clone)]
pub struct Template {
    funcs: BTreeMap<String, Func>,
    trees: BTreeMap<String, Tree>,
}

impl Default for Template {
    fn default() -> Self {
        Self::new()
    }
}

impl Template {
    /// A set with Go's builtin functions.
    pub fn new() -> Self {
        Self {
            funcs: builtins(),
            trees: BTreeMap::new(),
        }
    }

    /// Adds or replaces a function; like Go, before parsing texts using it.
    pub fn func(
        &mut self,
        name: &str,
        f: impl Fn(&mut Exec<'_>, &[Value]) -> Result<Value, FuncError> + Send + Sync + 'static,
    ) {
        self.funcs.insert(name.to_string(), Arc::new(f));
    }

    pub fn function(&self, name: &str) -> Option<Func> {
        self.funcs.get(name).cloned()
    }

    pub fn has(&self, name: &str) -> bool {
        self.trees.contains_key(name)
    }

    /// Names of the templates in the set, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.trees.keys().map(String::as_str)
    }

    pub(crate) fn parse_name(&self, name: &str) -> String {
        self.trees
            .get(name)
            .map_or_else(|| name.to_string(), |t| t.parse_name.clone())
    }

    /// Parses `text` as template `name`, adding its `define`s. As in Go, a
    /// later definition replaces an earlier one, except that a text that is
    /// only whitespace never replaces an existing template.
    pub fn parse(&mut self, name: &str, text: &str) -> Result<(), Error> {
        let funcs = &self.funcs;
        let parsed = parse(name, text, &|f| {
            funcs.contains_key(f) || f == "and" || f == "or"
        })?;
        for (define, nodes) in parsed.defines {
            self.add(&define, nodes, name);
        }
        self.add(name, parsed.root, name);
        Ok(())
    }

    fn add(&mut self, name: &str, nodes: Vec<Node>, parse_name: &str) {
        if self.trees.contains_key(name) && is_empty(&nodes) {
            return;
        }
        self.trees.insert(
            name.to_string(),
            Tree {
                nodes: Arc::new(nodes),
                parse_name: parse_name.to_string(),
            },
        );
    }

    /// Executes template `name` with `data` as dot and `$`.
    pub fn execute(&self, name: &str, data: Value) -> Result<String, Error> {
        self.execute_at_depth(name, data, 0)
    }

    pub(crate) fn execute_at_depth(
        &self,
        name: &str,
        data: Value,
        depth: usize,
    ) -> Result<String, Error> {
        let Some(tree) = self.trees.get(name) else {
            return Err(Error::NoTemplate(name.to_string()));
        };
        let nodes = Arc::clone(&tree.nodes);
        Exec::new(self, name, data, depth).run(&nodes)
    }
}

fn is_empty(nodes: &[Node]) -> bool {
    nodes.iter().all(|n| match n {
        Node::Text(t) => t.trim().is_empty(),
        _ => false,
    })
}
