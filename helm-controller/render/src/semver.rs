//! Semantic versions and constraints as Masterminds/semver v3 reads them
//! (Helm's semverCompare, dependency versions, kubeVersion, repository
//! version selection): `v` prefixes, missing minor/patch, operators
//! = != > < >= <= ~ ^, wildcards x/X/*, hyphen ranges, `,`/space AND and
//! `||` OR, and prereleases matching only constraints that have one.

use std::cmp::Ordering;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: String,
}

impl Version {
    /// Lenient parsing: "v1.2", "1", "1.2.3-rc.1+build".
    pub fn parse(text: &str) -> Result<Version, String> {
        let invalid = || format!("Invalid Semantic Version: {text:?}");
        let t = text.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let t = t.split_once('+').map_or(t, |(v, _)| v);
        let (core, pre) = match t.split_once('-') {
            Some((c, p)) => (c, p.to_string()),
            None => (t, String::new()),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(invalid());
        }
        let number = |i: usize| -> Result<u64, String> {
            parts
                .get(i)
                .map_or(Ok(0), |p| p.parse::<u64>().map_err(|_| invalid()))
        };
        Ok(Version {
            major: number(0)?,
            minor: number(1)?,
            patch: number(2)?,
            pre,
        })
    }

    fn cmp_pre(a: &str, b: &str) -> Ordering {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            _ => {}
        }
        let (mut x, mut y) = (a.split('.'), b.split('.'));
        loop {
            match (x.next(), y.next()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(p), Some(q)) => {
                    let order = match (p.parse::<u64>(), q.parse::<u64>()) {
                        (Ok(m), Ok(n)) => m.cmp(&n),
                        (Ok(_), Err(_)) => Ordering::Less,
                        (Err(_), Ok(_)) => Ordering::Greater,
                        (Err(_), Err(_)) => p.cmp(q),
                    };
                    if order != Ordering::Equal {
                        return order;
                    }
                }
            }
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| Version::cmp_pre(&self.pre, &other.pre))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One comparison; `dirty` marks which parts were wildcards or missing.
#[derive(Clone, Debug)]
struct Term {
    op: String,
    version: Version,
    /// How many leading parts were given (1..=3); the rest are wildcards.
    given: usize,
    has_pre: bool,
}

#[derive(Clone, Debug)]
pub struct Constraints(Vec<Vec<Term>>);

impl Constraints {
    pub fn parse(text: &str) -> Result<Constraints, String> {
        let mut groups = Vec::new();
        for group in text.split("||") {
            let group = normalize_hyphens(group.trim());
            let mut terms = Vec::new();
            for raw in split_terms(&group) {
                terms.extend(
                    parse_term(&raw)
                        .map_err(|_| format!("improper constraint: {}", text.trim()))?,
                );
            }
            if terms.is_empty() {
                return Err(format!("improper constraint: {}", text.trim()));
            }
            groups.push(terms);
        }
        Ok(Constraints(groups))
    }

    pub fn check(&self, version: &Version) -> bool {
        self.0
            .iter()
            .any(|group| group.iter().all(|t| t.check(version)))
    }
}

/// "1.2 - 1.4.5" -> ">= 1.2, <= 1.4.5".
fn normalize_hyphens(group: &str) -> String {
    let parts: Vec<&str> = group.split(" - ").collect();
    if parts.len() == 2 {
        format!(">= {}, <= {}", parts[0].trim(), parts[1].trim())
    } else {
        group.to_string()
    }
}

/// Terms are separated by commas or spaces; an operator may be followed
/// by spaces (">= 1.2").
fn split_terms(group: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut pending_op = String::new();
    for word in group.split([',', ' ']).filter(|w| !w.is_empty()) {
        if word.chars().all(|c| "=!<>~^".contains(c)) {
            pending_op.push_str(word);
            continue;
        }
        terms.push(format!("{pending_op}{word}"));
        pending_op.clear();
    }
    terms
}

fn parse_term(raw: &str) -> Result<Vec<Term>, String> {
    let op_len = raw
        .find(|c: char| !"=!<>~^".contains(c))
        .unwrap_or(raw.len());
    let (op, rest) = raw.split_at(op_len);
    let op = match op {
        "=>" => ">=",
        "=<" => "<=",
        "~>" => "~",
        o => o,
    };
    let rest = rest.strip_prefix('v').unwrap_or(rest);
    let core = rest.split(['-', '+']).next().unwrap_or(rest);
    let parts: Vec<&str> = core.split('.').collect();
    let given = parts
        .iter()
        .take_while(|p| !matches!(**p, "x" | "X" | "*"))
        .count();
    let concrete: Vec<&str> = parts[..given].to_vec();
    let version_text = if concrete.is_empty() {
        "0".to_string()
    } else {
        let mut text = concrete.join(".");
        if given == parts.len()
            && let Some(pos) = rest.find('-')
        {
            text.push_str(&rest[pos..]);
        }
        text
    };
    let version = Version::parse(&version_text)?;
    let has_pre = !version.pre.is_empty();
    if !["", "=", "!=", ">", "<", ">=", "<=", "~", "^"].contains(&op) {
        return Err(format!("unknown operator {op}"));
    }
    Ok(vec![Term {
        op: op.to_string(),
        version,
        given: given.min(3),
        has_pre,
    }])
}

impl Term {
    /// The half-open range [low, high) a wildcard/partial version covers.
    fn range(&self) -> (Version, Option<Version>) {
        let v = &self.version;
        let low = v.clone();
        let high = match self.given {
            0 => None,
            1 => Some(Version {
                major: v.major + 1,
                minor: 0,
                patch: 0,
                pre: String::new(),
            }),
            2 => Some(Version {
                major: v.major,
                minor: v.minor + 1,
                patch: 0,
                pre: String::new(),
            }),
            _ => None,
        };
        (low, high)
    }

    fn check(&self, version: &Version) -> bool {
        // A prerelease only satisfies constraints that mention one.
        if !version.pre.is_empty() && !self.has_pre {
            return false;
        }
        let v = &self.version;
        let exact = self.given >= 3;
        let (low, high) = self.range();
        let in_range = |x: &Version| *x >= low && high.as_ref().is_none_or(|h| x < h);
        match self.op.as_str() {
            "" | "=" => {
                if exact {
                    version == v
                } else {
                    in_range(version)
                }
            }
            "!=" => {
                if exact {
                    version != v
                } else {
                    !in_range(version)
                }
            }
            ">" => match (&high, exact) {
                (_, true) => version > v,
                (Some(h), false) => version >= h,
                (None, false) => false,
            },
            ">=" => version >= v,
            "<" => version < v,
            "<=" => match (&high, exact) {
                (_, true) => version <= v,
                (Some(h), false) => version < h,
                (None, false) => true,
            },
            "~" => {
                let upper = if self.given <= 1 {
                    Version {
                        major: v.major + 1,
                        minor: 0,
                        patch: 0,
                        pre: String::new(),
                    }
                } else {
                    Version {
                        major: v.major,
                        minor: v.minor + 1,
                        patch: 0,
                        pre: String::new(),
                    }
                };
                version >= v && *version < upper
            }
            "^" => {
                let upper = if v.major > 0 || self.given <= 1 {
                    Version {
                        major: v.major + 1,
                        minor: 0,
                        patch: 0,
                        pre: String::new(),
                    }
                } else if v.minor > 0 || self.given == 2 {
                    Version {
                        major: 0,
                        minor: v.minor + 1,
                        patch: 0,
                        pre: String::new(),
                    }
                } else {
                    Version {
                        major: 0,
                        minor: 0,
                        patch: v.patch + 1,
                        pre: String::new(),
                    }
                };
                version >= v && *version < upper
            }
            _ => false,
        }
    }
}

/// sprig's semverCompare.
pub fn semver_compare(constraint: &str, version: &str) -> Result<bool, String> {
    let constraints = Constraints::parse(constraint)?;
    let version = Version::parse(version)?;
    Ok(constraints.check(&version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(c: &str, v: &str) -> bool {
        semver_compare(c, v).unwrap_or_else(|e| panic!("{c} {v}: {e}"))
    }

    #[test]
    fn constraints_like_masterminds() {
        assert!(ok(">=1.25.0-0", "v1.35.8"));
        assert!(ok(">=1.25.0-0", "1.36.0-rc.1"));
        assert!(!ok(">=1.25.0", "1.36.0-rc.1"));
        assert!(ok("^1.2.3", "1.9.0"));
        assert!(!ok("^1.2.3", "2.0.0"));
        assert!(ok("^0.2.3", "0.2.9"));
        assert!(!ok("^0.2.3", "0.3.0"));
        assert!(ok("~1.2.3", "1.2.9"));
        assert!(!ok("~1.2.3", "1.3.0"));
        assert!(ok("1.2.x", "1.2.7"));
        assert!(!ok("1.2.x", "1.3.0"));
        assert!(ok(">= 1.2, < 3.0.0 || 5.x", "5.1.0"));
        assert!(ok("1.2 - 1.4.5", "1.4.5"));
        assert!(!ok("1.2 - 1.4.5", "1.4.6"));
        assert!(ok("!=1.2.3", "1.2.4"));
        assert!(ok("*", "3.2.1"));
        assert!(semver_compare("nonsense", "1.0.0").is_err());
    }
}
