//! sprig's urlParse and urlJoin on a reading of Go's net/url (parse,
//! unescape, String and its escaping rules), and getHostByName as Helm
//! gives it without --enable-dns: always "".

use std::collections::BTreeMap;

use k3r_gotemplate::{FuncError, Template, Value};

use super::args::{arity, map, strval};

pub fn register(t: &mut Template) {
    t.func("urlParse", |_, a| {
        arity("urlParse", a, 1)?;
        let url = Url::parse(&strval(&a[0]))
            .map_err(|e| FuncError::Call(format!("unable to parse url: {e}")))?;
        Ok(Value::from(url.to_dict()))
    });
    t.func("urlJoin", |_, a| {
        arity("urlJoin", a, 1)?;
        let dict = map(a, 0)?;
        let get = |key: &str| dict.get(key).map(|v| strval(&v)).unwrap_or_default();
        let userinfo = get("userinfo");
        let user = if userinfo.is_empty() {
            None
        } else {
            let probe = Url::parse(&format!("proto://{userinfo}@host"))
                .map_err(|e| FuncError::Call(format!("unable to parse userinfo in dict: {e}")))?;
            probe.user
        };
        let url = Url {
            scheme: get("scheme"),
            opaque: get("opaque"),
            user,
            host: get("host"),
            path: get("path"),
            raw_path: String::new(),
            force_query: false,
            raw_query: get("query"),
            fragment: get("fragment"),
        };
        Ok(Value::from(url.to_string()))
    });
    // Helm replaces sprig's DNS lookup unless DNS is enabled, which a
    // HelmChart cannot ask for.
    t.func("getHostByName", |_, a| {
        arity("getHostByName", a, 1)?;
        Ok(Value::str(""))
    });
}

#[derive(Debug, Default, Clone, PartialEq)]
struct User {
    name: String,
    password: Option<String>,
}

impl User {
    fn to_go_string(&self) -> String {
        let mut s = escape(&self.name, Mode::UserPassword);
        if let Some(p) = &self.password {
            s.push(':');
            s.push_str(&escape(p, Mode::UserPassword));
        }
        s
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
struct Url {
    scheme: String,
    opaque: String,
    user: Option<User>,
    host: String,
    path: String,
    raw_path: String,
    force_query: bool,
    raw_query: String,
    fragment: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Path,
    Host,
    UserPassword,
    Fragment,
}

/// url.Error's text: `parse "RAW": REASON`.
fn parse_error(raw: &str, reason: &str) -> String {
    format!("parse {}: {reason}", k3r_gotemplate::fmt::go_quote(raw))
}

impl Url {
    fn parse(raw: &str) -> Result<Url, String> {
        let (rest, fragment) = match raw.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (raw, None),
        };
        let mut url = Url::parse_no_fragment(rest).map_err(|e| parse_error(raw, &e))?;
        if let Some(f) = fragment {
            url.fragment = unescape(f).map_err(|e| parse_error(raw, &e))?;
        }
        Ok(url)
    }

    fn parse_no_fragment(raw: &str) -> Result<Url, String> {
        if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err("net/url: invalid control character in URL".into());
        }
        let mut url = Url::default();
        if raw.is_empty() {
            return Ok(url);
        }
        if raw == "*" {
            url.path = "*".into();
            return Ok(url);
        }
        let (scheme, mut rest) = scheme_of(raw)?;
        url.scheme = scheme.to_ascii_lowercase();
        if rest.ends_with('?') && rest.matches('?').count() == 1 {
            url.force_query = true;
            rest = &rest[..rest.len() - 1];
        } else if let Some((r, q)) = rest.split_once('?') {
            url.raw_query = q.to_string();
            rest = r;
        }
        if !rest.starts_with('/') {
            if !url.scheme.is_empty() {
                url.opaque = rest.to_string();
                return Ok(url);
            }
            let segment = rest.split('/').next().unwrap_or("");
            if segment.contains(':') {
                return Err("first path segment in URL cannot contain colon".into());
            }
        }
        if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
            let after = &rest[2..];
            let (authority, path) = match after.find('/') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            };
            let (user, host) = parse_authority(authority)?;
            url.user = user;
            url.host = host;
            rest = path;
        }
        url.path = unescape(rest)?;
        if escape(&url.path, Mode::Path) != rest {
            url.raw_path = rest.to_string();
        }
        Ok(url)
    }

    fn hostname(&self) -> String {
        let host = self.host.as_str();
        if let Some(inner) = host.strip_prefix('[') {
            return inner.split(']').next().unwrap_or("").to_string();
        }
        match host.rfind(':') {
            Some(i) => host[..i].to_string(),
            None => host.to_string(),
        }
    }

    fn escaped_path(&self) -> String {
        if !self.raw_path.is_empty()
            && valid_encoded(&self.raw_path, Mode::Path)
            && unescape(&self.raw_path).as_deref() == Ok(self.path.as_str())
        {
            return self.raw_path.clone();
        }
        if self.path == "*" {
            return "*".into();
        }
        escape(&self.path, Mode::Path)
    }

    fn to_dict(&self) -> BTreeMap<String, Value> {
        [
            ("scheme", self.scheme.clone()),
            ("host", self.host.clone()),
            ("hostname", self.hostname()),
            ("path", self.path.clone()),
            ("query", self.raw_query.clone()),
            ("opaque", self.opaque.clone()),
            ("fragment", self.fragment.clone()),
            (
                "userinfo",
                self.user
                    .as_ref()
                    .map(User::to_go_string)
                    .unwrap_or_default(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::from(v)))
        .collect()
    }
}

impl std::fmt::Display for Url {
    /// url.URL.String.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::new();
        if !self.scheme.is_empty() {
            out.push_str(&self.scheme);
            out.push(':');
        }
        if !self.opaque.is_empty() {
            out.push_str(&self.opaque);
        } else {
            if !self.scheme.is_empty() || !self.host.is_empty() || self.user.is_some() {
                if !self.host.is_empty() || !self.path.is_empty() || self.user.is_some() {
                    out.push_str("//");
                }
                if let Some(user) = &self.user {
                    out.push_str(&user.to_go_string());
                    out.push('@');
                }
                out.push_str(&escape(&self.host, Mode::Host));
            }
            let path = self.escaped_path();
            if !path.is_empty() && !path.starts_with('/') && !self.host.is_empty() {
                out.push('/');
            }
            if out.is_empty() && path.split('/').next().unwrap_or("").contains(':') {
                out.push_str("./");
            }
            out.push_str(&path);
        }
        if self.force_query || !self.raw_query.is_empty() {
            out.push('?');
            out.push_str(&self.raw_query);
        }
        if !self.fragment.is_empty() {
            out.push('#');
            out.push_str(&escape(&self.fragment, Mode::Fragment));
        }
        f.write_str(&out)
    }
}

/// getScheme: "scheme:" at the start, or no scheme.
fn scheme_of(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err("missing protocol scheme".into()),
            ':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

fn parse_authority(authority: &str) -> Result<(Option<User>, String), String> {
    let Some(at) = authority.rfind('@') else {
        return Ok((None, parse_host(authority)?));
    };
    let host = parse_host(&authority[at + 1..])?;
    let userinfo = &authority[..at];
    if !userinfo.chars().all(valid_userinfo_char) {
        return Err("net/url: invalid userinfo".into());
    }
    let user = match userinfo.split_once(':') {
        Some((name, password)) => User {
            name: unescape(name)?,
            password: Some(unescape(password)?),
        },
        None => User {
            name: unescape(userinfo)?,
            password: None,
        },
    };
    Ok((Some(user), host))
}

fn valid_userinfo_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c)
}

fn parse_host(host: &str) -> Result<String, String> {
    if host.starts_with('[') {
        let Some(end) = host.rfind(']') else {
            return Err("missing ']' in host".into());
        };
        let port = &host[end + 1..];
        if !port.is_empty() && !valid_port(port) {
            return Err(format!(
                "invalid port {} after host",
                k3r_gotemplate::fmt::go_quote(port)
            ));
        }
    } else if let Some(i) = host.rfind(':') {
        let port = &host[i..];
        if !valid_port(port) {
            return Err(format!(
                "invalid port {} after host",
                k3r_gotemplate::fmt::go_quote(port)
            ));
        }
    }
    unescape(host)
}

fn valid_port(port: &str) -> bool {
    port.strip_prefix(':')
        .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Go's shouldEscape for the modes sprig's URLs need.
fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if mode == Mode::Host && b"!$&'()*+,;=:[]<>\"".contains(&c) {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            Mode::Path => c == b'?',
            Mode::UserPassword => matches!(c, b'@' | b'/' | b'?' | b':'),
            Mode::Fragment => false,
            Mode::Host => true,
        },
        b'!' | b'(' | b')' | b'*' if mode == Mode::Fragment => false,
        _ => true,
    }
}

fn escape(s: &str, mode: Mode) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if should_escape(b, mode) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

fn valid_encoded(s: &str, mode: Mode) -> bool {
    s.bytes()
        .all(|b| b"!$&'()*+,;=:@[]%".contains(&b) || !should_escape(b, mode))
}

/// url.unescape: %XX decoded; a bad escape is an error.
fn unescape(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) if hex.is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit())) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                _ => {
                    let end = (i + 3).min(bytes.len());
                    return Err(format!(
                        "invalid URL escape {}",
                        k3r_gotemplate::fmt::go_quote(&String::from_utf8_lossy(&bytes[i..end]))
                    ));
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_joins_like_go() {
        let url = Url::parse("https://user:p%40ss@example.com:8443/a%20b/c?x=1&y=2#frag%21")
            .expect("parses");
        assert_eq!(url.scheme, "https");
        assert_eq!(url.host, "example.com:8443");
        assert_eq!(url.hostname(), "example.com");
        assert_eq!(url.path, "/a b/c");
        assert_eq!(url.raw_query, "x=1&y=2");
        assert_eq!(url.fragment, "frag!");
        assert_eq!(
            url.user.as_ref().map(User::to_go_string).as_deref(),
            Some("user:p%40ss")
        );
        assert_eq!(
            url.to_string(),
            "https://user:p%40ss@example.com:8443/a%20b/c?x=1&y=2#frag!"
        );
        assert_eq!(Url::parse("mailto:a@b").expect("opaque").opaque, "a@b");
        assert!(Url::parse("%zz").is_err());
        assert!(Url::parse(":x").is_err());
    }
}
