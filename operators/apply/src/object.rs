//! The identity of one object, as inventories keep it.

use std::fmt;

use serde_json::Value;

/// Identity of an applied object, as inventories (an Addon's status) keep it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{} {ns}/{}", self.api_version, self.kind, self.name),
            None => write!(f, "{}/{} {}", self.api_version, self.kind, self.name),
        }
    }
}

impl ObjectRef {
    /// Parses the `Display` form back (for status round trips).
    pub fn parse(s: &str) -> Option<Self> {
        let (gvk, object) = s.split_once(' ')?;
        let (api_version, kind) = gvk.rsplit_once('/')?;
        let (namespace, name) = match object.split_once('/') {
            Some((ns, name)) => (Some(ns.to_string()), name.to_string()),
            None => (None, object.to_string()),
        };
        Some(Self {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace,
            name,
        })
    }

    /// The reference of an object, when it has apiVersion, kind and name.
    pub fn of(object: &Value) -> Option<Self> {
        Some(Self {
            api_version: object["apiVersion"].as_str()?.to_string(),
            kind: object["kind"].as_str()?.to_string(),
            namespace: object["metadata"]["namespace"].as_str().map(String::from),
            name: object["metadata"]["name"].as_str()?.to_string(),
        })
    }
}
