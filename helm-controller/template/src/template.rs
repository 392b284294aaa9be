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
    parse_name: Arc<str>,
}

/// Cloning is cheap, as Go's Clone is (Helm's `tpl` clones the whole set
/// on every call): the function map and the templates are shared, and a
/// clone's own parses go into `local`, looked up first.
#[derive(Clone)]
pub struct Template {
    funcs: Arc<BTreeMap<String, Func>>,
    trees: Arc<BTreeMap<String, Tree>>,
    local: BTreeMap<String, Tree>,
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
            funcs: Arc::new(builtins()),
            trees: Arc::new(BTreeMap::new()),
            local: BTreeMap::new(),
        }
    }

    fn tree(&self, name: &str) -> Option<&Tree> {
        self.local.get(name).or_else(|| self.trees.get(name))
    }

    /// Adds or replaces a function; like Go, before parsing texts using it.
    pub fn func(
        &mut self,
        name: &str,
        f: impl Fn(&mut Exec<'_>, &[Value]) -> Result<Value, FuncError> + Send + Sync + 'static,
    ) {
        Arc::make_mut(&mut self.funcs).insert(name.to_string(), Arc::new(f));
    }

    pub fn function(&self, name: &str) -> Option<Func> {
        self.funcs.get(name).cloned()
    }

    pub fn has(&self, name: &str) -> bool {
        self.tree(name).is_some()
    }

    /// Names of the templates in the set, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let mut names: Vec<&str> = self
            .trees
            .keys()
            .filter(|name| !self.local.contains_key(*name))
            .chain(self.local.keys())
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names.into_iter()
    }

    pub(crate) fn parse_name(&self, name: &str) -> String {
        self.tree(name)
            .map_or_else(|| name.to_string(), |t| t.parse_name.to_string())
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
        if self.tree(name).is_some() && is_empty(&nodes) {
            return;
        }
        let tree = Tree {
            nodes: Arc::new(nodes),
            parse_name: parse_name.into(),
        };
        // The set that owns its templates alone adds to them; a clone
        // sharing them keeps its additions to itself.
        match Arc::get_mut(&mut self.trees) {
            Some(trees) if self.local.is_empty() => {
                trees.insert(name.to_string(), tree);
            }
            _ => {
                self.local.insert(name.to_string(), tree);
            }
        }
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
        let Some(tree) = self.tree(name) else {
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
