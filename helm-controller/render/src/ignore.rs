//! .helmignore as Helm's loader applies it (pkg/ignore): only when a chart
//! is loaded from a directory, to every path under it — a vendored
//! subchart's files by the parent's rules, never by the subchart's own
//! file — and to directories as well as files (an ignored directory is
//! not entered). Rules are tried in order and the first that decides
//! wins: a pattern that matches ignores; a `!pattern` that does NOT match
//! ignores (Helm's reading of negation), one that matches moves on. A
//! pattern with no '/' matches the base name, one with a '/' the whole
//! path, a leading '/' anchors at the chart root, a trailing '/' only
//! matches directories, `**` is refused. `templates/.?*` is always added
//! last.

use crate::chart::glob;

#[derive(Debug, Clone)]
struct Pattern {
    glob: String,
    negate: bool,
    dir_only: bool,
    /// Contains a '/' (after the root anchor is dropped): match the path.
    whole_path: bool,
}

#[derive(Debug, Clone, Default)]
pub struct IgnoreRules(Vec<Pattern>);

impl IgnoreRules {
    /// The rules of a .helmignore text, plus Helm's default.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rules = IgnoreRules::default();
        for line in text.lines() {
            rules.add(line)?;
        }
        rules.add("templates/.?*")?;
        Ok(rules)
    }

    fn add(&mut self, line: &str) -> Result<(), String> {
        let rule = line.trim();
        if rule.is_empty() || rule.starts_with('#') {
            return Ok(());
        }
        if rule.contains("**") {
            return Err("double-star (**) syntax is not supported".into());
        }
        let (negate, rule) = match rule.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, rule),
        };
        let (dir_only, rule) = match rule.strip_suffix('/') {
            Some(rest) => (true, rest),
            None => (false, rule),
        };
        let (whole_path, rule) = match rule.strip_prefix('/') {
            Some(rest) => (true, rest),
            None => (rule.contains('/'), rule),
        };
        self.0.push(Pattern {
            glob: rule.to_string(),
            negate,
            dir_only,
            whole_path,
        });
        Ok(())
    }

    /// Whether `path` (relative to the chart, '/'-separated) is left out.
    pub fn ignores(&self, path: &str, is_dir: bool) -> bool {
        if path.is_empty() || path == "." || path == "./" {
            return false;
        }
        let base = path.rsplit('/').next().unwrap_or(path);
        for p in &self.0 {
            let hit = glob(&p.glob, if p.whole_path { path } else { base });
            if p.negate {
                if (p.dir_only && !is_dir) || !hit {
                    return true;
                }
                continue;
            }
            if p.dir_only && !is_dir {
                continue;
            }
            if hit {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_semantics() {
        let rules =
            IgnoreRules::parse("# comment\n*.bak\nsecret/\n/top.txt\nci/*.yaml\n").expect("rules");
        assert!(rules.ignores("x.bak", false));
        assert!(rules.ignores("deep/y.bak", false));
        assert!(rules.ignores("secret", true));
        assert!(!rules.ignores("secret", false));
        assert!(rules.ignores("top.txt", false));
        assert!(!rules.ignores("sub/top.txt", false));
        assert!(rules.ignores("ci/a.yaml", false));
        assert!(rules.ignores("templates/.hidden", false));
        assert!(!rules.ignores("templates/a.yaml", false));
        // A negation ignores what it does not match.
        let negated = IgnoreRules::parse("*.bak\n!keep.txt\n").expect("rules");
        assert!(negated.ignores("a.bak", false));
        assert!(!negated.ignores("keep.txt", false));
        assert!(negated.ignores("templates", true));
        assert!(IgnoreRules::parse("a/**/b\n").is_err());
    }
}
