//! `.Files`: a chart's non-template files with Helm's methods (Get,
//! GetBytes, Glob, Lines, AsConfig, AsSecrets); rangeable like Go's map.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k3r_gotemplate::{Object, Value};

use crate::yaml::to_yaml;

#[derive(Debug, Clone, Default)]
pub struct Files(pub BTreeMap<String, Arc<Vec<u8>>>);

impl Files {
    pub fn new(files: &[(String, Arc<Vec<u8>>)]) -> Self {
        Self(
            files
                .iter()
                .map(|(p, b)| (p.clone(), Arc::clone(b)))
                .collect(),
        )
    }

    fn base_name_map(&self, f: impl Fn(&[u8]) -> String) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let map: BTreeMap<String, Value> = self
            .0
            .iter()
            .map(|(path, bytes)| {
                let base = path.rsplit('/').next().unwrap_or(path).to_string();
                (base, Value::from(f(bytes)))
            })
            .collect();
        to_yaml(&Value::from(map))
            .map(|y| y.strip_suffix('\n').unwrap_or(&y).to_string())
            .unwrap_or_default()
    }
}

/// gobwas/glob with '/' as separator: `*` stays within a path segment,
/// `**` crosses them.
fn glob_match(pattern: &str, path: &str) -> bool {
    fn inner(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') if p.get(1) == Some(&'*') => (0..=n.len()).any(|i| inner(&p[2..], &n[i..])),
            Some('*') => inner(&p[1..], n) || (!n.is_empty() && n[0] != '/' && inner(p, &n[1..])),
            Some('?') => !n.is_empty() && n[0] != '/' && inner(&p[1..], &n[1..]),
            Some('{') => {
                let Some(end) = p.iter().position(|c| *c == '}') else {
                    return false;
                };
                let alternatives: String = p[1..end].iter().collect();
                alternatives.split(',').any(|alt| {
                    let mut candidate: Vec<char> = alt.chars().collect();
                    candidate.extend_from_slice(&p[end + 1..]);
                    inner(&candidate, n)
                })
            }
            Some(c) => n.first() == Some(c) && inner(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = path.chars().collect();
    inner(&p, &n)
}

fn string_arg(args: &[Value], method: &str) -> Result<String, String> {
    match args {
        [Value::String(s)] => Ok(s.to_string()),
        [other] => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
        _ => Err(format!(
            "wrong number of args for {method}: want 1 got {}",
            args.len()
        )),
    }
}

impl Object for Files {
    fn type_name(&self) -> &str {
        "common.Files"
    }

    fn field(&self, _name: &str) -> Option<Value> {
        None
    }

    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let result = match name {
            "Get" => string_arg(args, name).map(|p| {
                Value::from(
                    self.0
                        .get(&p)
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default(),
                )
            }),
            "GetBytes" => string_arg(args, name)
                .map(|p| Value::Bytes(self.0.get(&p).cloned().unwrap_or_default())),
            "Glob" => string_arg(args, name).map(|pattern| {
                Value::Object(Arc::new(Files(
                    self.0
                        .iter()
                        .filter(|(p, _)| glob_match(&pattern, p))
                        .map(|(p, b)| (p.clone(), Arc::clone(b)))
                        .collect(),
                )))
            }),
            "Lines" => string_arg(args, name).map(|p| match self.0.get(&p) {
                None => Value::from(Vec::new()),
                Some(bytes) => {
                    let text = String::from_utf8_lossy(bytes);
                    let text = text.strip_suffix('\n').unwrap_or(&text);
                    Value::from(text.split('\n').map(Value::str).collect::<Vec<_>>())
                }
            }),
            "AsConfig" => {
                Ok(Value::from(self.base_name_map(|b| {
                    String::from_utf8_lossy(b).into_owned()
                })))
            }
            "AsSecrets" => Ok(Value::from(self.base_name_map(|b| STANDARD.encode(b)))),
            _ => return None,
        };
        Some(result)
    }

    fn format(&self) -> String {
        let entries: Vec<String> = self
            .0
            .iter()
            .map(|(p, b)| format!("{p}:{}", Value::Bytes(Arc::clone(b)).to_go_string()))
            .collect();
        format!("map[{}]", entries.join(" "))
    }

    fn to_data(&self) -> Value {
        Value::from(
            self.0
                .iter()
                .map(|(p, b)| (p.clone(), Value::Bytes(Arc::clone(b))))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    fn entries(&self) -> Option<Vec<(Value, Value)>> {
        Some(
            self.0
                .iter()
                .map(|(p, b)| (Value::str(p), Value::Bytes(Arc::clone(b))))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_gobwas() {
        assert!(glob_match("files/*", "files/a.txt"));
        assert!(!glob_match("files/*", "files/sub/a.txt"));
        assert!(glob_match("files/**", "files/sub/a.txt"));
        assert!(glob_match("**.txt", "files/sub/a.txt"));
        assert!(glob_match("files/*.{txt,json}", "files/a.json"));
    }
}
