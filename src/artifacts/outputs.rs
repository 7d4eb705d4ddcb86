//! `state/<env>/outputs.json`: the latest outputs, with sensitive values redacted
//! unless the user asked for them.

use std::path::Path;

use serde_json::{Map, Value};

pub const REDACTED: &str = "<sensitive>";

/// `terraform output -json` with every `sensitive` value replaced by `"<sensitive>"`.
pub fn redact(outputs: &Map<String, Value>, include_sensitive: bool) -> Value {
    let mut out = outputs.clone();
    if !include_sensitive {
        for output in out.values_mut() {
            if output.get("sensitive").and_then(Value::as_bool) == Some(true)
                && let Some(value) = output.get_mut("value")
            {
                *value = Value::String(REDACTED.to_string());
            }
        }
    }
    Value::Object(out)
}

pub fn write(artifacts_dir: &Path, outputs: &Value) -> anyhow::Result<()> {
    crate::files::ensure_private_dir(artifacts_dir)?;
    let mut text = serde_json::to_vec_pretty(outputs)?;
    text.push(b'\n');
    crate::files::write_atomic(
        &artifacts_dir.join("outputs.json"),
        &text,
        crate::files::PRIVATE_FILE,
    )
}

/// The cached outputs: `Ok(None)` when there is no outputs.json. Anything but a JSON
/// object of outputs (an array, a string, a non-regular file) is an error naming the file:
/// printing `{}` for it would claim there are no outputs.
pub fn read(artifacts_dir: &Path) -> anyhow::Result<Option<Map<String, Value>>> {
    let path = artifacts_dir.join("outputs.json");
    let Some(bytes) = crate::files::read_regular(&path)? else {
        return Ok(None);
    };
    let not_outputs = |what: String| -> anyhow::Error {
        crate::error::TfenvError::config(
            format!("`{}` is not an outputs document: {what}", path.display()),
            Some(
                "tfenv writes it after each deploy (the object of `terraform output -json`); drop --cached to read the outputs from the state".to_string(),
            ),
        )
        .into()
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(other) => Err(not_outputs(format!(
            "it holds {}, not an object of outputs",
            match other {
                Value::Array(_) => "a JSON array",
                Value::String(_) => "a JSON string",
                Value::Number(_) => "a JSON number",
                Value::Bool(_) => "a JSON boolean",
                _ => "JSON null",
            }
        ))),
        Err(err) => Err(not_outputs(format!("not valid JSON ({err})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_values_are_redacted_unless_asked_for() {
        let outputs: Map<String, Value> = serde_json::from_str(
            r#"{"token":{"sensitive":true,"type":"string","value":"hunter2"},"name":{"sensitive":false,"type":"string","value":"dev"}}"#,
        )
        .unwrap();
        let redacted = redact(&outputs, false);
        assert_eq!(redacted["token"]["value"], REDACTED);
        assert_eq!(redacted["name"]["value"], "dev");
        assert!(!redacted.to_string().contains("hunter2"));
        assert_eq!(redact(&outputs, true)["token"]["value"], "hunter2");
    }

    #[test]
    fn cached_outputs_that_are_not_an_object_are_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_none());
        std::fs::write(dir.path().join("outputs.json"), "{\"a\":{\"value\":1}}").unwrap();
        assert_eq!(read(dir.path()).unwrap().unwrap()["a"]["value"], 1);
        for (text, what) in [
            ("[1, 2]", "a JSON array"),
            ("null", "JSON null"),
            ("{", "not valid JSON"),
        ] {
            std::fs::write(dir.path().join("outputs.json"), text).unwrap();
            let err = format!("{:#}", read(dir.path()).unwrap_err());
            assert!(
                err.contains("outputs.json` is not an outputs document"),
                "{err}"
            );
            assert!(err.contains(what), "{err}");
        }
    }
}
