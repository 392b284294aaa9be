//! Go text/template's parser: tokens to a tree, plus the `define`d
//! templates. Errors read like Go's: "template: NAME:LINE: message".

use crate::Error;
use crate::ast::{Arg, Branch, Command, Node, Pipe, Pos};
use crate::lex::{Tok, Token, lex};
use crate::number::{GoNumber, go_number};

/// The result of parsing one text: its main tree and its definitions.
pub struct Parsed {
    pub root: Vec<Node>,
    pub defines: Vec<(String, Vec<Node>)>,
}

enum Stop {
    End,
    Else,
    Eof,
}

struct Parser<'a> {
    name: &'a str,
    tokens: Vec<Token>,
    at: usize,
    vars: Vec<String>,
    range_depth: usize,
    has_func: &'a dyn Fn(&str) -> bool,
    defines: Vec<(String, Vec<Node>)>,
}

pub fn parse(name: &str, text: &str, has_func: &dyn Fn(&str) -> bool) -> Result<Parsed, Error> {
    let tokens = lex(text).map_err(|(line, message)| Error::Parse {
        name: name.to_string(),
        line,
        message,
    })?;
    let mut parser = Parser {
        name,
        tokens,
        at: 0,
        vars: vec!["$".into()],
        range_depth: 0,
        has_func,
        defines: Vec::new(),
    };
    let (root, end) = parser.list(true)?;
    match end {
        Stop::Eof => {}
        Stop::End => return parser.fail("unexpected {{end}}"),
        Stop::Else => return parser.fail("unexpected {{else}}"),
    }
    Ok(Parsed {
        root,
        defines: parser.defines,
    })
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        self.tokens.get(self.at).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn next(&mut self) -> Token {
        if self.at >= self.tokens.len() {
            let line = self.line();
            self.at += 1;
            return Token {
                tok: Tok::Eof,
                line,
                col: 0,
            };
        }
        let token = &mut self.tokens[self.at];
        self.at += 1;
        // Text is never read twice (only actions backtrack), so it moves.
        if let Tok::Text(text) = &mut token.tok {
            return Token {
                tok: Tok::Text(std::mem::take(text)),
                line: token.line,
                col: token.col,
            };
        }
        token.clone()
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let token = self.next();
            if token.tok != Tok::Space {
                return token;
            }
        }
    }

    /// Skips spaces and returns (without consuming) the token after them.
    fn peek_non_space(&mut self) -> Tok {
        while self
            .tokens
            .get(self.at)
            .is_some_and(|t| t.tok == Tok::Space)
        {
            self.at += 1;
        }
        self.peek().clone()
    }

    fn line(&self) -> usize {
        self.tokens
            .get(self.at.saturating_sub(1))
            .map_or(1, |t| t.line)
    }

    fn pos(&self) -> Pos {
        let token = self.tokens.get(self.at.saturating_sub(1));
        Pos {
            line: token.map_or(1, |t| t.line),
            col: token.map_or(0, |t| t.col),
        }
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, Error> {
        Err(Error::Parse {
            name: self.name.to_string(),
            line: self.line(),
            message: message.into(),
        })
    }

    fn expect_right_delim(&mut self, context: &str) -> Result<(), Error> {
        match self.next_non_space().tok {
            Tok::RightDelim => Ok(()),
            other => self.fail(format!("unexpected {} in {context}", describe(&other))),
        }
    }

    /// Nodes up to {{end}}, {{else}} or the end of input.
    fn list(&mut self, top: bool) -> Result<(Vec<Node>, Stop), Error> {
        let mut nodes = Vec::new();
        loop {
            let token = self.next();
            match token.tok {
                Tok::Eof => return Ok((nodes, Stop::Eof)),
                Tok::Text(text) => nodes.push(Node::Text(text)),
                Tok::Comment => {}
                Tok::LeftDelim => {
                    let keyword = match self.peek_non_space() {
                        Tok::Keyword(k) => Some(k),
                        _ => None,
                    };
                    match keyword {
                        Some("end") => {
                            self.next_non_space();
                            self.expect_right_delim("end")?;
                            return Ok((nodes, Stop::End));
                        }
                        Some("else") => {
                            self.next_non_space();
                            return Ok((nodes, Stop::Else));
                        }
                        Some("define") => {
                            if !top {
                                return self.fail("unexpected <define> in command");
                            }
                            self.next_non_space();
                            self.define()?;
                        }
                        Some(k) => {
                            self.next_non_space();
                            nodes.push(self.keyword(k)?);
                        }
                        None => {
                            let pipe = self.pipeline("command", false)?;
                            nodes.push(Node::Action(pipe));
                        }
                    }
                }
                other => return self.fail(format!("unexpected {}", describe(&other))),
            }
        }
    }

    fn keyword(&mut self, keyword: &str) -> Result<Node, Error> {
        match keyword {
            "if" => Ok(Node::If(self.branch("if")?)),
            "range" => Ok(Node::Range(self.branch("range")?)),
            "with" => Ok(Node::With(self.branch("with")?)),
            "template" => {
                let pos = self.pos();
                let name = self.template_name("template clause")?;
                let pipe = if self.peek_non_space() == Tok::RightDelim {
                    self.next_non_space();
                    None
                } else {
                    Some(self.pipeline("template clause", false)?)
                };
                Ok(Node::Template { pos, name, pipe })
            }
            "block" => {
                let pos = self.pos();
                let name = self.template_name("block clause")?;
                let pipe = self.pipeline("block clause", false)?;
                let (body, end) = self.list(false)?;
                if !matches!(end, Stop::End) {
                    return self.fail("unexpected EOF in block clause");
                }
                self.defines.push((name.clone(), body));
                Ok(Node::Template {
                    pos,
                    name,
                    pipe: Some(pipe),
                })
            }
            "break" | "continue" => {
                if self.range_depth == 0 {
                    return self.fail(format!("{{{{{keyword}}}}} outside {{{{range}}}}"));
                }
                self.expect_right_delim(keyword)?;
                Ok(if keyword == "break" {
                    Node::Break
                } else {
                    Node::Continue
                })
            }
            other => self.fail(format!("unexpected <{other}> in command")),
        }
    }

    fn template_name(&mut self, context: &str) -> Result<String, Error> {
        match self.next_non_space().tok {
            Tok::String(s) | Tok::RawString(s) => Ok(s),
            other => self.fail(format!("unexpected {} in {context}", describe(&other))),
        }
    }

    fn define(&mut self) -> Result<(), Error> {
        let name = self.template_name("define clause")?;
        self.expect_right_delim("define clause")?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (body, end) = self.list(false)?;
        self.vars = saved;
        if !matches!(end, Stop::End) {
            return self.fail("unexpected EOF");
        }
        self.defines.push((name, body));
        Ok(())
    }

    fn branch(&mut self, kind: &'static str) -> Result<Branch, Error> {
        let vars = self.vars.len();
        let pipe = self.pipeline(kind, kind == "range")?;
        if kind == "range" {
            self.range_depth += 1;
        }
        let (list, end) = self.list(false)?;
        if kind == "range" {
            self.range_depth -= 1;
        }
        let else_list = match end {
            Stop::End => None,
            Stop::Eof => return self.fail(format!("unexpected EOF in {kind}")),
            Stop::Else => {
                // {{else if ...}} / {{else with ...}}: a nested branch that
                // shares the {{end}}.
                let chained = match self.peek_non_space() {
                    Tok::Keyword(k) if (k == "if" || k == "with") && k == kind => Some(k),
                    _ => None,
                };
                if let Some(k) = chained {
                    self.next_non_space();
                    let nested = self.branch(k)?;
                    Some(vec![if k == "if" {
                        Node::If(nested)
                    } else {
                        Node::With(nested)
                    }])
                } else {
                    self.expect_right_delim("else")?;
                    let (else_list, end) = self.list(false)?;
                    match end {
                        Stop::End => Some(else_list),
                        Stop::Else => return self.fail("expected end; found {{else}}"),
                        Stop::Eof => return self.fail(format!("unexpected EOF in {kind}")),
                    }
                }
            }
        };
        self.vars.truncate(vars);
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    /// A pipeline up to the closing delimiter (consumed).
    fn pipeline(&mut self, context: &str, allow_two: bool) -> Result<Pipe, Error> {
        let pos = self.pos();
        let mut decl = Vec::new();
        let mut is_assign = false;
        // Declarations: $x := / $x = / $i, $e :=
        let start = self.at;
        if let Tok::Variable(first) = self.peek_non_space() {
            self.next_non_space();
            match self.peek_non_space() {
                Tok::Declare | Tok::Assign => {
                    is_assign = self.next_non_space().tok == Tok::Assign;
                    if is_assign && !self.vars.contains(&first) {
                        return self.fail(format!("undefined variable {first:?}"));
                    }
                    decl.push(first.clone());
                    self.vars.push(first);
                }
                Tok::Comma if allow_two => {
                    self.next_non_space();
                    let Tok::Variable(second) = self.next_non_space().tok else {
                        return self.fail("range can only initialize variables");
                    };
                    match self.next_non_space().tok {
                        Tok::Declare => {}
                        Tok::Assign => is_assign = true,
                        other => {
                            return self.fail(format!(
                                "unexpected {} in range declaration",
                                describe(&other)
                            ));
                        }
                    }
                    decl.push(first.clone());
                    decl.push(second.clone());
                    self.vars.push(first);
                    self.vars.push(second);
                }
                Tok::Comma => return self.fail(format!("too many declarations in {context}")),
                _ => self.at = start,
            }
        }
        let mut cmds = Vec::new();
        loop {
            match self.peek_non_space() {
                Tok::RightDelim | Tok::RightParen => {
                    let closing = self.next_non_space();
                    let want_paren = context == "parenthesized pipeline";
                    if want_paren != (closing.tok == Tok::RightParen) {
                        return self.fail(format!(
                            "unexpected {} in {context}",
                            describe(&closing.tok)
                        ));
                    }
                    if cmds.is_empty() {
                        return self.fail(format!("missing value for {context}"));
                    }
                    return Ok(Pipe {
                        pos,
                        decl,
                        is_assign,
                        cmds,
                    });
                }
                Tok::Eof => return self.fail(format!("unclosed action in {context}")),
                _ => cmds.push(self.command()?),
            }
        }
    }

    fn command(&mut self) -> Result<Command, Error> {
        let mut args = Vec::new();
        let pos = {
            self.peek_non_space();
            let token = self.tokens.get(self.at);
            Pos {
                line: token.map_or(1, |t| t.line),
                col: token.map_or(0, |t| t.col),
            }
        };
        loop {
            self.peek_non_space();
            args.push(self.operand()?);
            match self.peek() {
                Tok::Space => {
                    self.next();
                    match self.peek() {
                        Tok::RightDelim | Tok::RightParen => break,
                        Tok::Pipe => {
                            self.next();
                            break;
                        }
                        _ => {}
                    }
                }
                Tok::RightDelim | Tok::RightParen => break,
                Tok::Pipe => {
                    self.next();
                    break;
                }
                other => {
                    let message = format!("unexpected {} in operand", describe(other));
                    return self.fail(message);
                }
            }
        }
        Ok(Command { pos, args })
    }

    fn operand(&mut self) -> Result<Arg, Error> {
        let term = self.term()?;
        let mut fields = Vec::new();
        while let Tok::Field(name) = self.peek() {
            fields.push(name.clone());
            self.next();
        }
        if fields.is_empty() {
            return Ok(term);
        }
        Ok(match term {
            Arg::Field(mut chain) => {
                chain.extend(fields);
                Arg::Field(chain)
            }
            Arg::Variable(name, mut chain) => {
                chain.extend(fields);
                Arg::Variable(name, chain)
            }
            Arg::Bool(_) | Arg::String(_) | Arg::Int(_) | Arg::Float(..) | Arg::Nil | Arg::Dot => {
                return self.fail(format!("unexpected . after term {:?}", term.to_string()));
            }
            other => Arg::Chain(Box::new(other), fields),
        })
    }

    fn term(&mut self) -> Result<Arg, Error> {
        let token = self.next_non_space();
        Ok(match token.tok {
            Tok::Identifier(name) => {
                if !(self.has_func)(&name) {
                    return self.fail(format!("function {name:?} not defined"));
                }
                Arg::Identifier(name)
            }
            Tok::Dot => Arg::Dot,
            Tok::Nil => Arg::Nil,
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return self.fail(format!("undefined variable {name:?}"));
                }
                Arg::Variable(name, Vec::new())
            }
            Tok::Field(name) => Arg::Field(vec![name]),
            Tok::Bool(b) => Arg::Bool(b),
            Tok::Char(c, _) => Arg::Int(i64::from(u32::from(c))),
            Tok::Number(text) => self.number(&text)?,
            Tok::String(s) | Tok::RawString(s) => Arg::String(s),
            Tok::LeftParen => Arg::Pipe(Box::new(self.pipeline("parenthesized pipeline", false)?)),
            other => return self.fail(format!("unexpected {} in operand", describe(&other))),
        })
    }

    /// Go's number constants: integers (decimal, 0x, 0o, 0b, legacy octal,
    /// underscores between digits) are ints; decimal floats and hex floats
    /// (`0x1p60`) are float64; `2i` is an imaginary constant; anything else
    /// is illegal.
    fn number(&self, text: &str) -> Result<Arg, Error> {
        match go_number(text) {
            Some(GoNumber::Int(value)) => Ok(Arg::Int(value)),
            Some(GoNumber::Float(value)) => Ok(Arg::Float(value, text.to_string())),
            Some(GoNumber::Imaginary(value)) => Ok(Arg::Imaginary(value, text.to_string())),
            None => self.fail(format!("illegal number syntax: {text:?}")),
        }
    }
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Text(t) => format!("{t:?}"),
        Tok::LeftDelim => "\"{{\"".into(),
        Tok::RightDelim => "\"}}\"".into(),
        Tok::RightParen => "\")\"".into(),
        Tok::LeftParen => "\"(\"".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::Eof => "EOF".into(),
        Tok::Keyword(k) => format!("<{k}>"),
        Tok::Identifier(name) => format!("<{name}>"),
        Tok::String(s) => format!("{s:?}"),
        other => format!("{other:?}"),
    }
}
