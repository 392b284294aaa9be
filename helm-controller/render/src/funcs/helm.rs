//! Helm's own template functions: include, tpl and lookup.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use k3r_gotemplate::{FuncError, Template, Value, map_of};

use super::args::{arity, string};

/// Helm's limit on how deeply one name may include itself.
const MAX_INCLUDES_OF_ONE_NAME: usize = 1000;

/// The name Helm gives the template set, which `tpl` texts are parsed as.
pub const SET_NAME: &str = "gotpl";

pub fn register(t: &mut Template) {
    let included: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    t.func("include", move |exec, a| {
        arity("include", a, 2)?;
        let name = string(a, 0)?;
        {
            let mut counts = included.lock().unwrap_or_else(|p| p.into_inner());
            let count = counts.entry(name.clone()).or_insert(0);
            if *count > MAX_INCLUDES_OF_ONE_NAME {
                return Err(FuncError::Call(format!(
                    "unable to execute template: rendering template has a nested reference name: {name}"
                )));
            }
            *count += 1;
        }
        let result = exec.execute_named(&name, a[1].clone());
        if let Some(count) = included
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&name)
        {
            *count -= 1;
        }
        result.map(Value::from).map_err(|e| FuncError::Call(e.to_string()))
    });
    t.func("tpl", |exec, a| {
        arity("tpl", a, 2)?;
        let text = string(a, 0)?;
        // A copy of the whole set, so defines made inside the text can be
        // included from it without touching the chart's templates.
        let mut set = exec.template().clone();
        set.parse(SET_NAME, &text)
            .map_err(|e| FuncError::Call(format!("cannot parse template {text:?}: {e}")))?;
        let out = set.execute(SET_NAME, a[1].clone()).map_err(|e| {
            FuncError::Call(format!(
                "error during tpl function execution for {text:?}: {e}"
            ))
        })?;
        Ok(Value::from(out.replace("<no value>", "")))
    });
    // Without a cluster (and until the controller wires one in) lookup
    // finds nothing, as in `helm template`.
    t.func("lookup", |_, a| {
        arity("lookup", a, 4)?;
        Ok(map_of([]))
    });
}
