//! Where two JSON records differ, said the way a user can act on: the path of the setting
//! and both values.

/// Drops `name` from every model fingerprint (an object with `weights_sha256`).
pub(super) fn forget_model_names(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(m) => {
            if m.contains_key("weights_sha256") {
                m.remove("name");
            }
            m.values_mut().for_each(forget_model_names);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(forget_model_names),
        _ => {}
    }
}

/// Removes the leaf at a dotted path (`options.batch`) from a JSON object, if present.
pub(super) fn remove_path(value: &mut serde_json::Value, dotted: &str) {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut at = value;
    for part in parts {
        match at.get_mut(part) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(object) = at.as_object_mut() {
        object.remove(last);
    }
}

/// Where two JSON values differ: the path (`config.seed`) and both values of the shallowest
/// differing leaf (the first in key order among equals). Shallowest, because a setting is
/// usually the cause and deep differences its consequences: another `seed` also draws other
/// `samples[0][0]`, and the seed is what the user changed.
pub fn json_difference(
    path: &str,
    old: &serde_json::Value,
    new: &serde_json::Value,
) -> Option<(String, String, String)> {
    let mut found = Vec::new();
    differences(path, 0, old, new, &mut found);
    found
        .into_iter()
        .min_by_key(|(_, depth)| *depth)
        .map(|(d, _)| d)
}

type Difference = (String, String, String);

fn differences(
    path: &str,
    depth: usize,
    old: &serde_json::Value,
    new: &serde_json::Value,
    found: &mut Vec<(Difference, usize)>,
) {
    use serde_json::Value;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => differences(&join(k), depth + 1, x, y, found),
                    (x, y) => {
                        let show =
                            |v: Option<&Value>| v.map_or("(none)".to_string(), Value::to_string);
                        found.push(((join(k), show(x), show(y)), depth + 1));
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(&format!("{path}[{i}]"), depth + 1, x, y, found);
            }
        }
        _ if old != new => found.push(((path.to_string(), shown(old), shown(new)), depth)),
        _ => {}
    }
}

/// A JSON value for a message; a number that is exactly an f32 (the settings are f32) is
/// shown as that f32 (`0.05`, not `0.05000000074505806`).
fn shown(v: &serde_json::Value) -> String {
    match v.as_f64() {
        Some(x) if v.is_f64() && f64::from(x as f32) == x => (x as f32).to_string(),
        _ => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_difference_names_the_first_changed_leaf() {
        let a = json!({"model": {"sha": "aa", "name": "r20"}, "config": {"seed": 0, "it": 100}});
        assert_eq!(json_difference("", &a, &a), None);
        let b = json!({"model": {"sha": "aa", "name": "r20"}, "config": {"seed": 1, "it": 100}});
        assert_eq!(
            json_difference("", &a, &b),
            Some(("config.seed".into(), "0".into(), "1".into()))
        );
        let c = json!({"model": {"sha": "bb", "name": "r20"}, "config": {"seed": 0, "it": 100}});
        assert_eq!(
            json_difference("", &a, &c),
            Some(("model.sha".into(), "\"aa\"".into(), "\"bb\"".into()))
        );
        let d = json!({"l": [1, 2]});
        let e = json!({"l": [1, 3]});
        assert_eq!(
            json_difference("", &d, &e),
            Some(("l[1]".into(), "2".into(), "3".into()))
        );
        let f = json!({"l": [1]});
        assert_eq!(
            json_difference("", &d, &f).map(|x| x.0),
            Some("l".to_string())
        );
        let h = json!({"p": f64::from(0.05f32)});
        assert_eq!(
            json_difference("", &h, &json!({"p": f64::from(0.3f32)})),
            Some(("p".into(), "0.05".into(), "0.3".into()))
        );
        // The shallowest difference is named: the seed, not the samples it drew.
        let i = json!({"seed": 0, "samples": [[11, "a.png"]]});
        let j = json!({"seed": 3, "samples": [[4, "b.png"]]});
        assert_eq!(
            json_difference("", &i, &j),
            Some(("seed".into(), "0".into(), "3".into()))
        );
        let g = json!({"x": 1});
        assert_eq!(
            json_difference("", &g, &json!({})),
            Some(("x".into(), "1".into(), "(none)".into()))
        );
    }
}
