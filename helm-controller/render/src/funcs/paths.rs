//! sprig's path functions: Go's `path` package (base, dir, clean, ext,
//! isAbs) and `path/filepath`'s, which on Linux are the same.

use k3r_gotemplate::{Template, Value};

use super::args::{arity, string};

pub fn register(t: &mut Template) {
    for (names, f) in [
        (["base", "osBase"], base as fn(&str) -> String),
        (["dir", "osDir"], dir),
        (["clean", "osClean"], clean),
        (["ext", "osExt"], |p: &str| ext(p).to_string()),
    ] {
        for name in names {
            t.func(name, move |_, a| {
                arity(name, a, 1)?;
                Ok(Value::from(f(&string(a, 0)?)))
            });
        }
    }
    for name in ["isAbs", "osIsAbs"] {
        t.func(name, move |_, a| {
            arity(name, a, 1)?;
            Ok(Value::Bool(string(a, 0)?.starts_with('/')))
        });
    }
}

/// path.Clean: the shortest equivalent path, lexically.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// path.Base: the last element, trailing slashes removed.
pub fn base(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// path.Dir: everything but the last element, cleaned.
pub fn dir(path: &str) -> String {
    let head = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "",
    };
    clean(head)
}

/// path.Ext: the suffix from the last dot of the last element.
pub fn ext(path: &str) -> &str {
    for (i, c) in path.char_indices().rev() {
        match c {
            '/' => return "",
            '.' => return &path[i..],
            _ => {}
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_go_path() {
        for (input, want) in [
            ("", "."),
            ("a/b/../c/./d/", "a/c/d"),
            ("/../a//b", "/a/b"),
            ("../../a", "../../a"),
            ("a/../..", ".."),
            ("/", "/"),
        ] {
            assert_eq!(clean(input), want, "clean {input:?}");
        }
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("a/b/", "b"),
            ("x.tar.gz", "x.tar.gz"),
        ] {
            assert_eq!(base(input), want, "base {input:?}");
        }
        for (input, want) in [
            ("", "."),
            ("a", "."),
            ("/a", "/"),
            ("a/b/c", "a/b"),
            ("a/b/", "a/b"),
        ] {
            assert_eq!(dir(input), want, "dir {input:?}");
        }
        assert_eq!(ext("a/b.tar.gz"), ".gz");
        assert_eq!(ext("a.b/c"), "");
    }
}
