//! The parse tree of a template, as Go's text/template/parse builds it.

use std::fmt;

/// Where a node starts (line 1-based, column a 0-based byte offset in the
/// line, as Go reports them) and which parse it belongs to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Clone, Debug)]
pub enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        pos: Pos,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

/// if / range / with: the pipeline, the body and the optional else.
#[derive(Clone, Debug)]
pub struct Branch {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Clone, Debug)]
pub struct Pipe {
    pub pos: Pos,
    /// Variables declared (`:=`) or assigned (`=`) by this pipeline.
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Command>,
}

#[derive(Clone, Debug)]
pub struct Command {
    pub pos: Pos,
    pub args: Vec<Arg>,
}

#[derive(Clone, Debug)]
pub enum Arg {
    /// `.a.b`
    Field(Vec<String>),
    /// `$x.a.b` (`$` alone is the data the template was executed with).
    Variable(String, Vec<String>),
    /// `(pipeline).a.b` or `func.a` is not Go; only parenthesised pipelines chain.
    Chain(Box<Arg>, Vec<String>),
    Dot,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64, String),
    /// An imaginary constant (`2i`): Go's complex128 with no real part.
    Imaginary(f64, String),
    String(String),
    Identifier(String),
    Pipe(Box<Pipe>),
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field(fields) => {
                for field in fields {
                    write!(f, ".{field}")?;
                }
                Ok(())
            }
            Arg::Variable(name, fields) => {
                write!(f, "{name}")?;
                for field in fields {
                    write!(f, ".{field}")?;
                }
                Ok(())
            }
            Arg::Chain(node, fields) => {
                write!(f, "{node}")?;
                for field in fields {
                    write!(f, ".{field}")?;
                }
                Ok(())
            }
            Arg::Dot => write!(f, "."),
            Arg::Nil => write!(f, "nil"),
            Arg::Bool(b) => write!(f, "{b}"),
            Arg::Int(i) => write!(f, "{i}"),
            Arg::Float(_, text) | Arg::Imaginary(_, text) => write!(f, "{text}"),
            Arg::String(s) => write!(f, "{s:?}"),
            Arg::Identifier(name) => write!(f, "{name}"),
            Arg::Pipe(pipe) => write!(f, "({pipe})"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                write!(f, " ")?;
            }
            write!(f, "{arg}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            write!(
                f,
                "{} {} ",
                self.decl.join(", "),
                if self.is_assign { "=" } else { ":=" }
            )?;
        }
        for (i, cmd) in self.cmds.iter().enumerate() {
            if i > 0 {
                write!(f, " | ")?;
            }
            write!(f, "{cmd}")?;
        }
        Ok(())
    }
}
