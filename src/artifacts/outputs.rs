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
    super::ensure_private_dir(artifacts_dir)?;
    let mut text = serde_json::to_vec_pretty(outputs)?;
    text.push(b'\n');
    super::write_atomic(
        &artifacts_dir.join("outputs.json"),
        &text,
        super::PRIVATE_FILE,
    )
}

pub fn read(artifacts_dir: &Path) -> anyhow::Result<Option<Value>> {
    let path = artifacts_dir.join("outputs.json");
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!("`{}` is not valid JSON ({e})", path.display())
        })?)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(anyhow::Error::new(err).context(format!("reading `{}`", path.display()))),
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
}
