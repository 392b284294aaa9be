//! Go text/template's lexer: text and actions between `{{` and `}}`, trim
//! markers (`{{- ` and ` -}}`), comments, and the tokens of an action.

use std::cell::Cell;

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    Comment,
    Space,
    Pipe,
    LeftParen,
    RightParen,
    Comma,
    Declare,
    Assign,
    /// `.name` (one element of a field chain).
    Field(String),
    /// `$` or `$name`.
    Variable(String),
    Dot,
    Identifier(String),
    Keyword(&'static str),
    Bool(bool),
    Nil,
    Number(String),
    /// A char constant such as 'a' (an int), with its source text.
    Char(char, String),
    String(String),
    RawString(String),
    Eof,
}

#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
    pub col: usize,
}

const KEYWORDS: &[&str] = &[
    "block", "break", "continue", "define", "else", "end", "if", "range", "template", "with",
];

pub struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    tokens: Vec<Token>,
    /// Trim the whitespace at the start of the next text (after ` -}}`).
    trim_next: bool,
    /// Where line counting got to: tokens come in order, so finding a
    /// token's line and column only scans the text since the last one.
    counted: Cell<LineMark>,
}

#[derive(Clone, Copy, Default)]
struct LineMark {
    pos: usize,
    line: usize,
    line_start: usize,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

pub fn lex(src: &str) -> Result<Vec<Token>, (usize, String)> {
    let mut lexer = Lexer {
        src,
        pos: 0,
        tokens: Vec::new(),
        trim_next: false,
        counted: Cell::new(LineMark::default()),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    /// 1-based line and byte column of `pos`.
    fn line_col(&self, pos: usize) -> (usize, usize) {
        let mut mark = self.counted.get();
        if pos < mark.pos {
            mark = LineMark::default();
        }
        for (i, b) in self.src.as_bytes()[mark.pos..pos].iter().enumerate() {
            if *b == b'\n' {
                mark.line += 1;
                mark.line_start = mark.pos + i + 1;
            }
        }
        mark.pos = pos;
        self.counted.set(mark);
        (mark.line + 1, pos - mark.line_start)
    }

    fn push(&mut self, tok: Tok, at: usize) {
        let (line, col) = self.line_col(at);
        self.tokens.push(Token { tok, line, col });
    }

    fn error<T>(&self, msg: impl Into<String>) -> Result<T, (usize, String)> {
        Err((self.line_col(self.pos).0, msg.into()))
    }

    fn run(&mut self) -> Result<(), (usize, String)> {
        loop {
            let start = self.pos;
            let Some(offset) = self.rest().find("{{") else {
                let text = self.take_text(self.src.len(), false);
                if !text.is_empty() {
                    self.push(Tok::Text(text), start);
                }
                self.push(Tok::Eof, self.src.len());
                return Ok(());
            };
            let delim = self.pos + offset;
            // "{{- " trims the text before it.
            let after = &self.src[delim + 2..];
            let trim_left = after.starts_with('-') && after[1..].starts_with(is_space);
            let text = self.take_text(delim, trim_left);
            if !text.is_empty() {
                self.push(Tok::Text(text), start);
            }
            self.pos = delim + 2;
            if trim_left {
                self.pos += 1;
            }
            self.action(delim)?;
        }
    }

    /// Text up to `end`, honouring pending and requested trims.
    fn take_text(&mut self, end: usize, trim_right: bool) -> String {
        let mut text = &self.src[self.pos..end];
        if self.trim_next {
            text = text.trim_start_matches(is_space);
            self.trim_next = false;
        }
        if trim_right {
            text = text.trim_end_matches(is_space);
        }
        self.pos = end;
        text.to_string()
    }

    /// At a right delimiter (with an optional trim marker)? Returns its length.
    fn right_delim(&self) -> Option<(usize, bool)> {
        let rest = self.rest();
        if rest.starts_with("}}") {
            return Some((2, false));
        }
        let mut chars = rest.chars();
        if chars.next().is_some_and(is_space) {
            let trimmed = rest.trim_start_matches(is_space);
            let spaces = rest.len() - trimmed.len();
            if trimmed.starts_with("-}}") && spaces >= 1 {
                return Some((spaces + 3, true));
            }
        }
        None
    }

    fn action(&mut self, delim_at: usize) -> Result<(), (usize, String)> {
        // A comment must follow the delimiter (and trim marker) directly
        // or after spaces.
        let trimmed = self.rest().trim_start_matches(is_space);
        if trimmed.starts_with("/*") {
            let skipped = self.rest().len() - trimmed.len();
            self.pos += skipped + 2;
            let Some(end) = self.rest().find("*/") else {
                return self.error("unclosed comment");
            };
            self.pos += end + 2;
            match self.right_delim() {
                Some((len, trim)) => {
                    self.pos += len;
                    self.trim_next = trim;
                    self.push(Tok::Comment, delim_at);
                    return Ok(());
                }
                None => return self.error("comment ends before closing delimiter"),
            }
        }
        self.push(Tok::LeftDelim, delim_at);
        let mut parens = 0usize;
        loop {
            if let Some((len, trim)) = self.right_delim() {
                if parens > 0 {
                    return self.error("unclosed left paren");
                }
                let at = self.pos;
                self.pos += len;
                self.trim_next = trim;
                self.push(Tok::RightDelim, at);
                return Ok(());
            }
            let start = self.pos;
            let Some(c) = self.rest().chars().next() else {
                return self.error("unclosed action");
            };
            match c {
                c if is_space(c) => {
                    let rest = self.rest();
                    let trimmed = rest.trim_start_matches(is_space);
                    self.pos += rest.len() - trimmed.len();
                    self.push(Tok::Space, start);
                }
                '|' => {
                    self.pos += 1;
                    self.push(Tok::Pipe, start);
                }
                '(' => {
                    self.pos += 1;
                    parens += 1;
                    self.push(Tok::LeftParen, start);
                }
                ')' => {
                    if parens == 0 {
                        return self.error("unexpected right paren");
                    }
                    parens -= 1;
                    self.pos += 1;
                    self.push(Tok::RightParen, start);
                }
                ',' => {
                    self.pos += 1;
                    self.push(Tok::Comma, start);
                }
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return self.error("expected :=");
                    }
                    self.pos += 2;
                    self.push(Tok::Declare, start);
                }
                '=' => {
                    self.pos += 1;
                    self.push(Tok::Assign, start);
                }
                '"' => {
                    let s = self.quoted()?;
                    self.push(Tok::String(s), start);
                }
                '`' => {
                    let Some(end) = self.rest()[1..].find('`') else {
                        return self.error("unterminated raw quoted string");
                    };
                    let s = self.rest()[1..1 + end].to_string();
                    self.pos += end + 2;
                    self.push(Tok::RawString(s), start);
                }
                '\'' => {
                    let (c, text) = self.char_constant()?;
                    self.push(Tok::Char(c, text), start);
                }
                '$' => {
                    self.pos += 1;
                    let name = self.word();
                    self.push(Tok::Variable(format!("${name}")), start);
                }
                '.' => {
                    let next = self.rest()[1..].chars().next();
                    if next.is_some_and(|c| c.is_ascii_digit()) {
                        let n = self.number()?;
                        self.push(Tok::Number(n), start);
                    } else {
                        self.pos += 1;
                        let name = self.word();
                        if name.is_empty() {
                            self.push(Tok::Dot, start);
                        } else {
                            self.push(Tok::Field(name), start);
                        }
                    }
                }
                c if c == '+' || c == '-' || c.is_ascii_digit() => {
                    let n = self.number()?;
                    self.push(Tok::Number(n), start);
                }
                c if is_alnum(c) => {
                    let word = self.word();
                    let tok = match word.as_str() {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        w => match KEYWORDS.iter().find(|k| **k == w) {
                            Some(k) => Tok::Keyword(k),
                            None => Tok::Identifier(word.clone()),
                        },
                    };
                    self.push(tok, start);
                }
                other => return self.error(format!("unrecognized character in action: {other:?}")),
            }
        }
    }

    fn word(&mut self) -> String {
        let rest = self.rest();
        let end = rest.find(|c: char| !is_alnum(c)).unwrap_or(rest.len());
        self.pos += end;
        rest[..end].to_string()
    }

    fn number(&mut self) -> Result<String, (usize, String)> {
        let rest = self.rest();
        let mut end = 0;
        let bytes = rest.as_bytes();
        if end < bytes.len() && (bytes[end] == b'+' || bytes[end] == b'-') {
            end += 1;
        }
        let hex = rest[end..].starts_with("0x") || rest[end..].starts_with("0X");
        while end < bytes.len() {
            let b = bytes[end];
            let exponent_sign = (b == b'+' || b == b'-')
                && end > 0
                && if hex {
                    matches!(bytes[end - 1], b'p' | b'P')
                } else {
                    matches!(bytes[end - 1], b'e' | b'E')
                };
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || exponent_sign {
                end += 1;
            } else {
                break;
            }
        }
        let text = rest[..end].to_string();
        if text == "+" || text == "-" {
            return self.error(format!("bad number syntax: {text:?}"));
        }
        self.pos += end;
        Ok(text)
    }

    fn quoted(&mut self) -> Result<String, (usize, String)> {
        let rest = self.rest();
        let mut out = String::new();
        let mut chars = rest.char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\n' => return self.error("unterminated quoted string"),
                '\\' => {
                    let Some((_, e)) = chars.next() else {
                        return self.error("unterminated quoted string");
                    };
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'a' => out.push('\u{7}'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'v' => out.push('\u{b}'),
                        '\\' => out.push('\\'),
                        '"' => out.push('"'),
                        '\'' => out.push('\''),
                        'x' | 'u' | 'U' => {
                            let len = match e {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let hex: String = (0..len)
                                .filter_map(|_| chars.next().map(|(_, h)| h))
                                .collect();
                            let code = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                            match code {
                                Some(c) => out.push(c),
                                None => return self.error(format!("invalid escape \\{e}{hex}")),
                            }
                        }
                        d if d.is_digit(8) => {
                            let mut code = d.to_digit(8).unwrap_or(0);
                            for _ in 0..2 {
                                if let Some((_, o)) = chars.next() {
                                    code = code * 8 + o.to_digit(8).unwrap_or(0);
                                }
                            }
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        other => return self.error(format!("invalid escape \\{other}")),
                    }
                }
                c => out.push(c),
            }
        }
        self.error("unterminated quoted string")
    }

    fn char_constant(&mut self) -> Result<(char, String), (usize, String)> {
        let rest = self.rest();
        let Some(end) = rest[1..].find('\'') else {
            return self.error("unterminated character constant");
        };
        // An escaped quote: '\''.
        let end = if rest[1..].starts_with("\\'") {
            2 + rest[3..].find('\'').unwrap_or(0)
        } else {
            end + 1
        };
        let text = rest[..=end].to_string();
        let inner = &text[1..text.len() - 1];
        let c = if let Some(esc) = inner.strip_prefix('\\') {
            match esc {
                "n" => '\n',
                "t" => '\t',
                "r" => '\r',
                "\\" => '\\',
                "'" => '\'',
                "0" => '\0',
                _ => return self.error(format!("malformed character constant: {text}")),
            }
        } else {
            let mut chars = inner.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => c,
                _ => return self.error(format!("malformed character constant: {text}")),
            }
        };
        self.pos += end + 1;
        Ok((c, text))
    }
}
