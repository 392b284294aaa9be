//! Executing a parsed template with Go's semantics: missingkey=zero maps,
//! the "nil pointer evaluating" error on fields of a nil map entry, sorted
//! map ranges, Go 1.18 short-circuit and/or, break/continue.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::Error;
use crate::ast::{Arg, Branch, Command, Node, Pipe, Pos};
use crate::template::{FuncError, Template};
use crate::value::Value;

/// Go's limit on nested {{template}} calls.
const MAX_DEPTH: usize = 100_000;

enum Flow {
    Normal,
    Break,
    Continue,
}

/// One execution: the output so far, the variables in scope, and what is
/// being executed (for error messages).
pub struct Exec<'t> {
    template: &'t Template,
    out: String,
    vars: Vec<(String, Value)>,
    depth: usize,
    /// Name of the template being executed ("executing \"NAME\"").
    name: String,
}

/// A field lookup's result, remembering whether it came out of an
/// interface (a map entry or struct field): a nil one makes a further field
/// an error, and Go's messages name its type "interface {}".
struct Looked {
    value: Value,
    nil_interface: bool,
}

impl<'t> Exec<'t> {
    pub(crate) fn new(template: &'t Template, name: &str, data: Value, depth: usize) -> Self {
        Self {
            template,
            out: String::new(),
            vars: vec![("$".into(), data)],
            depth,
            name: name.to_string(),
        }
    }

    /// The template set being executed (for functions such as `tpl`).
    pub fn template(&self) -> &'t Template {
        self.template
    }

    /// Executes the named template with `data`, as {{template}} does, and
    /// returns its output (Helm's `include`).
    pub fn execute_named(&mut self, name: &str, data: Value) -> Result<String, Error> {
        if self.depth >= MAX_DEPTH {
            return Err(Error::Exec {
                location: self.name.clone(),
                name: self.name.clone(),
                context: name.to_string(),
                message: format!("exceeded maximum template depth ({MAX_DEPTH})"),
            });
        }
        self.template.execute_at_depth(name, data, self.depth + 1)
    }

    pub(crate) fn run(mut self, tree: &[Node]) -> Result<String, Error> {
        let dot = self.vars[0].1.clone();
        self.walk_list(&dot, tree)?;
        Ok(self.out)
    }

    fn fail<T>(&self, pos: &Pos, context: &str, message: impl Into<String>) -> Result<T, Error> {
        // Go's ErrorContext once cut the node's text at 20 characters;
        // the Go that Helm v4 is built with prints it whole.
        let context = context.to_string();
        Err(Error::Exec {
            location: format!(
                "{}:{}:{}",
                self.template.parse_name(&self.name),
                pos.line,
                pos.col
            ),
            name: self.name.clone(),
            context,
            message: message.into(),
        })
    }

    fn walk_list(&mut self, dot: &Value, nodes: &[Node]) -> Result<Flow, Error> {
        for node in nodes {
            match self.walk(dot, node)? {
                Flow::Normal => {}
                flow => return Ok(flow),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Value, node: &Node) -> Result<Flow, Error> {
        match node {
            Node::Text(text) => self.out.push_str(text),
            Node::Action(pipe) => {
                let value = self.pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    match value {
                        Value::Nil => self.out.push_str("<no value>"),
                        other => self.out.push_str(&other.to_go_string()),
                    }
                }
            }
            Node::If(branch) => return self.if_or_with(dot, branch, false),
            Node::With(branch) => return self.if_or_with(dot, branch, true),
            Node::Range(branch) => return self.range(dot, branch),
            Node::Template { pos, name, pipe } => {
                let data = match pipe {
                    Some(pipe) => self.pipeline(dot, pipe)?,
                    None => Value::Nil,
                };
                if !self.template.has(name) {
                    return self.fail(
                        pos,
                        &format!("{{{{template {name:?}}}}}"),
                        format!("template {name:?} not defined"),
                    );
                }
                let output = self.execute_named(name, data)?;
                self.out.push_str(&output);
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn if_or_with(&mut self, dot: &Value, branch: &Branch, with: bool) -> Result<Flow, Error> {
        let mark = self.vars.len();
        let value = self.pipeline(dot, &branch.pipe)?;
        let flow = if value.truthy() {
            let dot = if with { value } else { dot.clone() };
            self.walk_list(&dot, &branch.list)?
        } else if let Some(else_list) = &branch.else_list {
            self.walk_list(dot, else_list)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn range(&mut self, dot: &Value, branch: &Branch) -> Result<Flow, Error> {
        let mark = self.vars.len();
        let value = self.pipeline(dot, &branch.pipe)?;
        let items: Vec<(Value, Value)> = match &value {
            Value::List(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i64::try_from(i).unwrap_or(i64::MAX)), v.clone()))
                .collect(),
            Value::Map(map) => map
                .entries()
                .into_iter()
                .map(|(k, v)| (Value::from(k), v))
                .collect(),
            Value::Bytes(bytes) => bytes
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    (
                        Value::Int(i64::try_from(i).unwrap_or(i64::MAX)),
                        Value::Int(i64::from(*b)),
                    )
                })
                .collect(),
            Value::Int(n) => {
                if branch.pipe.decl.len() > 1 {
                    return self.fail(
                        &branch.pipe.pos,
                        &branch.pipe.to_string(),
                        format!("can't use {n} to iterate over more than one variable"),
                    );
                }
                (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect()
            }
            Value::Nil => Vec::new(),
            Value::Object(object) if object.entries().is_some() => {
                object.entries().unwrap_or_default()
            }
            other => {
                return self.fail(
                    &branch.pipe.pos,
                    &branch.pipe.to_string(),
                    format!("range can't iterate over {}", other.to_go_string()),
                );
            }
        };
        let decl = branch.pipe.decl.len();
        let mut result = Flow::Normal;
        if items.is_empty()
            && let Some(else_list) = &branch.else_list
        {
            result = self.walk_list(dot, else_list)?;
        }
        for (index, elem) in items {
            // The pipeline pushed its variables: the element goes in the
            // last declared, the index/key in the first of two.
            let top = self.vars.len();
            if decl >= 1 {
                if branch.pipe.is_assign {
                    let name = branch.pipe.decl[decl - 1].clone();
                    self.set_var(&name, elem.clone());
                } else if let Some(slot) = self.vars.get_mut(top - 1) {
                    slot.1 = elem.clone();
                }
            }
            if decl >= 2 {
                if branch.pipe.is_assign {
                    let name = branch.pipe.decl[0].clone();
                    self.set_var(&name, index.clone());
                } else if let Some(slot) = self.vars.get_mut(top - 2) {
                    slot.1 = index.clone();
                }
            }
            let inner = self.vars.len();
            let flow = self.walk_list(&elem, &branch.list)?;
            self.vars.truncate(inner);
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(match result {
            Flow::Normal => Flow::Normal,
            other => other,
        })
    }

    fn set_var(&mut self, name: &str, value: Value) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = value;
        }
    }

    fn var(&self, pos: &Pos, name: &str) -> Result<Value, Error> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, value)) => Ok(value.clone()),
            None => self.fail(pos, name, format!("undefined variable: {name}")),
        }
    }

    fn pipeline(&mut self, dot: &Value, pipe: &Pipe) -> Result<Value, Error> {
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.command(dot, cmd, value)?);
        }
        let value = value.unwrap_or_default();
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, value.clone());
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, cmd: &Command, has_final: bool) -> Result<(), Error> {
        if cmd.args.len() > 1 || has_final {
            return self.fail(
                &cmd.pos,
                &cmd.to_string(),
                format!("can't give argument to non-function {}", cmd.args[0]),
            );
        }
        Ok(())
    }

    fn command(&mut self, dot: &Value, cmd: &Command, last: Option<Value>) -> Result<Value, Error> {
        let Some(first) = cmd.args.first() else {
            return self.fail(&cmd.pos, "", "empty command");
        };
        match first {
            Arg::Field(fields) => {
                self.field_chain(dot, dot.clone(), fields, cmd, &cmd.args[1..], last)
            }
            Arg::Chain(node, fields) => {
                if cmd.args.len() > 1 {
                    // Go evaluates "(pipe).Method arg" only through methods.
                }
                let receiver = self.arg(dot, node, cmd)?;
                self.field_chain(dot, receiver, fields, cmd, &cmd.args[1..], last)
            }
            Arg::Variable(name, fields) => {
                let value = self.var(&cmd.pos, name)?;
                if fields.is_empty() {
                    self.not_a_function(cmd, last.is_some())?;
                    return Ok(value);
                }
                self.field_chain(dot, value, fields, cmd, &cmd.args[1..], last)
            }
            Arg::Identifier(name) => self.function(dot, name, cmd, &cmd.args[1..], last),
            Arg::Pipe(pipe) => {
                self.not_a_function(cmd, last.is_some())?;
                let mark = self.vars.len();
                let value = self.pipeline(dot, pipe)?;
                self.vars.truncate(mark);
                Ok(value)
            }
            Arg::Nil => self.fail(&cmd.pos, "nil", "nil is not a command"),
            constant => {
                self.not_a_function(cmd, last.is_some())?;
                self.arg(dot, constant, cmd)
            }
        }
    }

    /// The value of one argument.
    fn arg(&mut self, dot: &Value, arg: &Arg, cmd: &Command) -> Result<Value, Error> {
        Ok(match arg {
            Arg::Dot => dot.clone(),
            Arg::Nil => Value::Nil,
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Int(i) => Value::Int(*i),
            Arg::Float(f, _) => Value::Float(*f),
            Arg::Imaginary(im, _) => {
                Value::Object(Arc::new(crate::value::Complex { re: 0.0, im: *im }))
            }
            Arg::String(s) => Value::str(s),
            Arg::Field(fields) => self.field_chain(dot, dot.clone(), fields, cmd, &[], None)?,
            Arg::Variable(name, fields) => {
                let value = self.var(&cmd.pos, name)?;
                if fields.is_empty() {
                    value
                } else {
                    self.field_chain(dot, value, fields, cmd, &[], None)?
                }
            }
            Arg::Chain(node, fields) => {
                let receiver = self.arg(dot, node, cmd)?;
                self.field_chain(dot, receiver, fields, cmd, &[], None)?
            }
            Arg::Pipe(pipe) => {
                let mark = self.vars.len();
                let value = self.pipeline(dot, pipe)?;
                self.vars.truncate(mark);
                value
            }
            Arg::Identifier(name) => self.function(dot, name, cmd, &[], None)?,
        })
    }

    fn field_chain(
        &mut self,
        dot: &Value,
        receiver: Value,
        fields: &[String],
        cmd: &Command,
        args: &[Arg],
        last: Option<Value>,
    ) -> Result<Value, Error> {
        let mut current = Looked {
            value: receiver,
            nil_interface: false,
        };
        let mut last = last;
        for (i, field) in fields.iter().enumerate() {
            let final_field = i + 1 == fields.len();
            let (args, last) = if final_field {
                (args, last.take())
            } else {
                (&[][..], None)
            };
            current = self.field(dot, field, current, cmd, args, last)?;
        }
        Ok(current.value)
    }

    fn field(
        &mut self,
        dot: &Value,
        name: &str,
        receiver: Looked,
        cmd: &Command,
        args: &[Arg],
        last: Option<Value>,
    ) -> Result<Looked, Error> {
        let has_args = !args.is_empty() || last.is_some();
        match &receiver.value {
            Value::Nil if receiver.nil_interface => self.fail(
                &cmd.pos,
                &cmd.to_string(),
                format!("nil pointer evaluating interface {{}}.{name}"),
            ),
            // An invalid value (nil collapsed by a pipeline): zero, as Go.
            Value::Nil => Ok(Looked {
                value: Value::Nil,
                nil_interface: false,
            }),
            Value::Map(map) => {
                if has_args {
                    return self.fail(
                        &cmd.pos,
                        &cmd.to_string(),
                        format!("{name} is not a method but has arguments"),
                    );
                }
                Ok(Looked {
                    value: map.get(name).unwrap_or_default(),
                    nil_interface: true,
                })
            }
            Value::Object(object) => {
                let object = Arc::clone(object);
                let mut values = Vec::new();
                for arg in args {
                    values.push(self.arg(dot, arg, cmd)?);
                }
                values.extend(last);
                if let Some(result) = object.method(name, &values) {
                    return match result {
                        Ok(value) => Ok(Looked {
                            value,
                            nil_interface: false,
                        }),
                        Err(message) => self.fail(
                            &cmd.pos,
                            &cmd.to_string(),
                            format!("error calling {name}: {message}"),
                        ),
                    };
                }
                match object.field(name) {
                    Some(_) if has_args => self.fail(
                        &cmd.pos,
                        &cmd.to_string(),
                        format!("{name} has arguments but cannot be invoked as function"),
                    ),
                    Some(value) => Ok(Looked {
                        value,
                        nil_interface: true,
                    }),
                    None => self.fail(
                        &cmd.pos,
                        &cmd.to_string(),
                        format!("can't evaluate field {name} in type {}", object.type_name()),
                    ),
                }
            }
            // Go names the static type: values out of maps are interface {}.
            other => self.fail(
                &cmd.pos,
                &cmd.to_string(),
                format!(
                    "can't evaluate field {name} in type {}",
                    if receiver.nil_interface {
                        "interface {}".to_string()
                    } else {
                        other.type_name()
                    }
                ),
            ),
        }
    }

    fn function(
        &mut self,
        dot: &Value,
        name: &str,
        cmd: &Command,
        args: &[Arg],
        last: Option<Value>,
    ) -> Result<Value, Error> {
        if name == "and" || name == "or" {
            if args.is_empty() && last.is_none() {
                return self.fail(
                    &cmd.pos,
                    &cmd.to_string(),
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                );
            }
            let mut value = Value::Nil;
            for arg in args {
                value = self.arg(dot, arg, cmd)?;
                if value.truthy() == (name == "or") {
                    return Ok(value);
                }
            }
            if let Some(last) = last {
                value = last;
            }
            return Ok(value);
        }
        let Some(function) = self.template.function(name) else {
            return self.fail(
                &cmd.pos,
                &cmd.to_string(),
                format!("{name:?} is not a defined function"),
            );
        };
        let mut values = Vec::with_capacity(args.len() + 1);
        for arg in args {
            values.push(self.arg(dot, arg, cmd)?);
        }
        values.extend(last);
        match function(self, &values) {
            Ok(value) => Ok(value),
            Err(FuncError::Call(message)) => self.fail(
                &cmd.pos,
                &cmd.to_string(),
                format!("error calling {name}: {message}"),
            ),
            Err(FuncError::Arg(message)) => self.fail(&cmd.pos, &cmd.to_string(), message),
        }
    }
}

/// For functions building maps.
pub fn map_of(entries: impl IntoIterator<Item = (String, Value)>) -> Value {
    Value::from(entries.into_iter().collect::<BTreeMap<_, _>>())
}
