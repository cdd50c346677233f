//! `${ns.key}` references inside job parameters and their substitution.
//!
//! A reference is `${` + a namespace + `.` + a dotted key path + `}`: `${slot.start}`, `${param.tier}`,
//! `${plan.plan_id}` (an upstream job's output), `${build.sha256.mosaic}` (nested). The slot's are
//! `${slot.start}`, `${slot.end}`, `${slot.date}` (the slot's date) and `${slot.night}` (the date of
//! the window's start), see [`super::validate::SLOT_KEYS`]. A string that is
//! exactly one reference takes the referenced value with its JSON type; a reference inside a longer string
//! is replaced by its text. `$${` writes a literal `${`.
//!
//! Invariant: substitution never yields null for a missing value; the resolver decides between a value,
//! leaving the reference for later, leaving the parameter out, or an error.

use serde_json::{Map, Value};

/// One `${ns.path}` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    pub ns: String,
    /// The dotted path after the namespace (at least one segment).
    pub path: Vec<String>,
}

impl std::fmt::Display for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "${{{}.{}}}", self.ns, self.path.join("."))
    }
}

/// What a resolver says about one reference.
pub enum Resolution {
    Value(Value),
    /// Leave the reference in place (resolved at a later stage).
    Keep,
    /// Leave the parameter out (only when the whole string is this reference).
    Omit,
    Error(String),
}

/// A malformed reference, or a reference that cannot be resolved (the message says which and why).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SubstError(pub String);

enum Piece {
    Text(String),
    Ref(Ref),
}

/// Splits a string into text and references; the error says what is malformed.
fn pieces(s: &str) -> Result<Vec<Piece>, SubstError> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        text.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix("${") {
            text.push_str("${");
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = r.find('}').ok_or_else(|| {
                SubstError(format!("unclosed reference in {s:?}: add the closing '}}'"))
            })?;
            let inner = &r[..end];
            let mut parts = inner.split('.').map(|p| p.trim().to_string());
            let ns = parts.next().unwrap_or_default();
            let path: Vec<String> = parts.collect();
            if ns.is_empty() || path.is_empty() || path.iter().any(std::string::String::is_empty) {
                return Err(SubstError(format!(
                    "malformed reference ${{{inner}}} in {s:?}: write ${{job.key}}, ${{slot.start}} or ${{param.name}}"
                )));
            }
            if !text.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut text)));
            }
            out.push(Piece::Ref(Ref { ns, path }));
            rest = &r[end + 1..];
        } else {
            text.push('$');
            rest = after;
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

/// Every reference in a value (strings inside arrays and tables included).
pub fn refs(v: &Value) -> Result<Vec<Ref>, SubstError> {
    let mut out = Vec::new();
    collect(v, &mut out)?;
    Ok(out)
}

fn collect(v: &Value, out: &mut Vec<Ref>) -> Result<(), SubstError> {
    match v {
        Value::String(s) => {
            for p in pieces(s)? {
                if let Piece::Ref(r) = p {
                    out.push(r);
                }
            }
        }
        Value::Array(a) => a.iter().try_for_each(|x| collect(x, out))?,
        Value::Object(m) => m.values().try_for_each(|x| collect(x, out))?,
        _ => {}
    }
    Ok(())
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Substitutes in one string. `Ok(None)` = leave the parameter out.
fn subst_str(
    s: &str,
    resolve: &mut dyn FnMut(&Ref) -> Resolution,
) -> Result<Option<Value>, SubstError> {
    let ps = pieces(s)?;
    if let [Piece::Ref(r)] = ps.as_slice() {
        return match resolve(r) {
            Resolution::Value(v) => Ok(Some(v)),
            Resolution::Keep => Ok(Some(Value::String(s.to_string()))),
            Resolution::Omit => Ok(None),
            Resolution::Error(e) => Err(SubstError(e)),
        };
    }
    let mut out = String::new();
    for p in ps {
        match p {
            // Re-escape literal "${" so a later pass leaves it alone.
            Piece::Text(t) => out.push_str(&t.replace("${", "$${")),
            Piece::Ref(r) => match resolve(&r) {
                Resolution::Value(v) => out.push_str(&text_of(&v).replace("${", "$${")),
                Resolution::Keep => out.push_str(&r.to_string()),
                Resolution::Omit => {
                    return Err(SubstError(format!(
                        "{r} is not set, and it is part of the longer string {s:?}; give it a value"
                    )));
                }
                Resolution::Error(e) => return Err(SubstError(e)),
            },
        }
    }
    Ok(Some(Value::String(out)))
}

/// Substitutes every reference in a parameter table.
pub fn substitute(
    params: &Map<String, Value>,
    resolve: &mut dyn FnMut(&Ref) -> Resolution,
) -> Result<Map<String, Value>, SubstError> {
    let mut out = Map::new();
    for (k, v) in params {
        if let Some(v) = subst_value(v, resolve)? {
            out.insert(k.clone(), v);
        }
    }
    Ok(out)
}

fn subst_value(
    v: &Value,
    resolve: &mut dyn FnMut(&Ref) -> Resolution,
) -> Result<Option<Value>, SubstError> {
    Ok(Some(match v {
        Value::String(s) => return subst_str(s, resolve),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| {
                    subst_value(x, resolve)?.ok_or_else(|| {
                        SubstError(
                            "an unset optional parameter cannot be an array item".to_string(),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(substitute(m, resolve)?),
        other => other.clone(),
    }))
}

/// Turns `$${` escapes into literal `${` once every reference is resolved.
pub fn unescape(params: &Map<String, Value>) -> Map<String, Value> {
    fn un(v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(s.replace("$${", "${")),
            Value::Array(a) => Value::Array(a.iter().map(un).collect()),
            Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), un(v))).collect()),
            o => o.clone(),
        }
    }
    params.iter().map(|(k, v)| (k.clone(), un(v))).collect()
}

/// Looks up a dotted path in a job's outputs.
pub fn lookup<'a>(outputs: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = outputs;
    for p in path {
        cur = match cur {
            Value::Object(m) => m.get(p)?,
            Value::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    (!cur.is_null()).then_some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_and_partial_references() {
        let p = json!({"a": "${x.n}", "b": "id-${x.n}-$${lit}", "c": "${p.gone}", "d": ["${x.s}"]});
        let mut r = |r: &Ref| match (r.ns.as_str(), r.path[0].as_str()) {
            ("x", "n") => Resolution::Value(json!(7)),
            ("x", "s") => Resolution::Value(json!("s")),
            _ => Resolution::Omit,
        };
        let out = substitute(p.as_object().unwrap(), &mut r).unwrap();
        assert_eq!(out["a"], json!(7));
        assert_eq!(unescape(&out)["b"], json!("id-7-${lit}"));
        assert!(!out.contains_key("c"));
        assert_eq!(out["d"], json!(["s"]));
    }

    #[test]
    fn malformed_and_nested() {
        assert!(refs(&json!("${nodot}")).is_err());
        assert!(refs(&json!("${a.b")).is_err());
        let v = json!({"sha256": {"mosaic": "ab"}, "n": null});
        assert_eq!(
            lookup(&v, &["sha256".into(), "mosaic".into()]),
            Some(&json!("ab"))
        );
        assert_eq!(lookup(&v, &["n".into()]), None);
    }
}
