//! The header of a Terraform state (serial, lineage, versions, resource counts), read
//! by streaming: a state of any size is walked once and never held in memory. Also the
//! root module's outputs, which a local state holds as `terraform output -json` prints them.

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateHeader {
    /// State format version (4 for Terraform ≥ 0.12).
    pub version: u64,
    pub terraform_version: Option<String>,
    pub serial: u64,
    pub lineage: String,
    /// Resource blocks, managed and data.
    pub resources: u64,
    /// Resource instances: what `terraform state list` counts.
    pub instances: u64,
    /// Size of the state document in bytes.
    pub bytes: u64,
}

impl StateHeader {
    /// What `terraform state pull` prints for an environment with no state: no lineage
    /// and no resources (serial 0). Not a state worth backing up or comparing lineages with.
    pub fn is_empty(&self) -> bool {
        self.lineage.is_empty() && self.resources == 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("not a Terraform state: {0}")]
    Invalid(String),
    #[error("reading the state: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the header from `reader`. `Ok(None)` when it is empty (no state yet).
pub fn read_header(reader: impl Read) -> Result<Option<StateHeader>, StateError> {
    let count = Arc::new(AtomicU64::new(0));
    let mut reader = BufReader::with_capacity(
        256 * 1024,
        Counting {
            inner: reader,
            bytes: count.clone(),
        },
    );
    if reader.fill_buf()?.is_empty() {
        return Ok(None);
    }
    // The reader is moved in, not borrowed: serde_json's byte-at-a-time reads are only
    // fast on an owned BufReader (through `&mut` every byte costs a full read call).
    let mut de = serde_json::Deserializer::from_reader(reader);
    let raw = Raw::deserialize(&mut de).map_err(json_error)?;
    // `end` reads to EOF (only whitespace may follow), so the count covers every byte.
    de.end().map_err(json_error)?;
    header(raw, count.load(Ordering::Relaxed))
}

/// Reads the header from a state already in memory (the fastest path, for small files).
pub fn read_header_slice(bytes: &[u8]) -> Result<Option<StateHeader>, StateError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let raw = Raw::deserialize(&mut de).map_err(json_error)?;
    de.end().map_err(json_error)?;
    header(raw, bytes.len() as u64)
}

/// What the first bytes of a state say about it (a ranged read of a bucket version):
/// each field `None` when those bytes end before it, or are not a state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HeadFields {
    pub serial: Option<u64>,
    pub lineage: Option<String>,
    pub terraform_version: Option<String>,
}

/// Reads `serial`, `lineage` and `terraform_version` from the start of a state, which may
/// be cut off anywhere: the top-level fields are taken as they come (terraform writes
/// them first), and the read stops once it has them or the bytes run out. Never fails.
pub fn read_head(bytes: &[u8]) -> HeadFields {
    let mut fields = HeadFields::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // The error is where the bytes end (or where the read stopped): what was read stays.
    let _ = de.deserialize_map(HeadVisitor(&mut fields));
    fields
}

struct HeadVisitor<'a>(&'a mut HeadFields);

impl<'de> Visitor<'de> for HeadVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Terraform state")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let fields = self.0;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "serial" => fields.serial = map.next_value()?,
                "lineage" => fields.lineage = map.next_value()?,
                "terraform_version" => fields.terraform_version = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            if fields.serial.is_some()
                && fields.lineage.is_some()
                && fields.terraform_version.is_some()
            {
                return Err(serde::de::Error::custom("read enough"));
            }
        }
        Ok(())
    }
}

/// The root module's outputs from a local state file, as `terraform output -json` prints
/// them: `{name: {sensitive, type, value}}`. `Ok(None)` when there is no such file (or it
/// is not a regular file), it is empty, or its format is not version 4 — the caller then
/// asks terraform. Resources are skipped while streaming, never held in memory.
pub fn read_outputs_file(
    path: &std::path::Path,
) -> anyhow::Result<Option<serde_json::Map<String, serde_json::Value>>> {
    use anyhow::Context;
    // Opening a FIFO in the state's place would block: only regular files are read.
    if !std::fs::metadata(path).is_ok_and(|meta| meta.is_file()) {
        return Ok(None);
    }
    let file =
        std::fs::File::open(path).with_context(|| format!("opening `{}`", path.display()))?;
    read_outputs(file).with_context(|| format!("reading `{}`", path.display()))
}

/// `read_outputs_file` of any reader.
pub fn read_outputs(
    reader: impl Read,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, StateError> {
    #[derive(Deserialize)]
    struct Outputs {
        version: Option<u64>,
        #[serde(default)]
        outputs: std::collections::BTreeMap<String, Output>,
    }
    #[derive(Deserialize)]
    struct Output {
        value: serde_json::Value,
        #[serde(rename = "type")]
        kind: serde_json::Value,
        /// The state writes it only when true; `output -json` always says it.
        #[serde(default)]
        sensitive: bool,
    }
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    if reader.fill_buf()?.is_empty() {
        return Ok(None);
    }
    let mut de = serde_json::Deserializer::from_reader(reader);
    let state = Outputs::deserialize(&mut de).map_err(json_error)?;
    de.end().map_err(json_error)?;
    if state.version != Some(4) {
        return Ok(None);
    }
    Ok(Some(
        state
            .outputs
            .into_iter()
            .map(|(name, output)| {
                let mut fields = serde_json::Map::new();
                fields.insert("sensitive".into(), output.sensitive.into());
                fields.insert("type".into(), output.kind);
                fields.insert("value".into(), output.value);
                (name, serde_json::Value::Object(fields))
            })
            .collect(),
    ))
}

fn header(raw: Raw, bytes: u64) -> Result<Option<StateHeader>, StateError> {
    let (Some(version), Some(serial), Some(lineage)) = (raw.version, raw.serial, raw.lineage)
    else {
        return Err(StateError::Invalid(
            "the JSON has no `version`, `serial` and `lineage`".to_string(),
        ));
    };
    Ok(Some(StateHeader {
        version,
        terraform_version: raw.terraform_version,
        serial,
        lineage,
        resources: raw.resources.blocks,
        instances: raw.resources.instances,
        bytes,
    }))
}

fn json_error(err: serde_json::Error) -> StateError {
    if err.is_io() {
        return StateError::Io(err.into());
    }
    StateError::Invalid(format!("{err}"))
}

struct Counting<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[derive(Deserialize)]
struct Raw {
    version: Option<u64>,
    terraform_version: Option<String>,
    serial: Option<u64>,
    lineage: Option<String>,
    #[serde(default)]
    resources: ResourceCount,
}

/// Counts resources and their instances while skipping every attribute.
#[derive(Default)]
struct ResourceCount {
    blocks: u64,
    instances: u64,
}

impl<'de> Deserialize<'de> for ResourceCount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Blocks;
        impl<'de> Visitor<'de> for Blocks {
            type Value = ResourceCount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of resources")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ResourceCount, A::Error> {
                let mut count = ResourceCount::default();
                while let Some(resource) = seq.next_element::<Resource>()? {
                    count.blocks += 1;
                    count.instances += resource.instances.0;
                }
                Ok(count)
            }
        }
        deserializer.deserialize_seq(Blocks)
    }
}

#[derive(Deserialize)]
struct Resource {
    #[serde(default)]
    instances: Count,
}

#[derive(Default)]
struct Count(u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items;
        impl<'de> Visitor<'de> for Items {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
        }
        deserializer.deserialize_seq(Items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = r#"{
  "version": 4,
  "terraform_version": "1.11.4",
  "serial": 7,
  "lineage": "3f1c-aa",
  "outputs": {"secret": {"value": "hunter2", "type": "string", "sensitive": true}},
  "resources": [
    {"mode": "managed", "type": "terraform_data", "name": "a", "instances": [{"attributes": {"x": [1,2,{"y": null}]}}]},
    {"mode": "managed", "type": "terraform_data", "name": "b", "instances": [{}, {}]}
  ],
  "check_results": null
}
"#;

    #[test]
    fn header_fields_and_counts_are_read() {
        let header = read_header(STATE.as_bytes()).unwrap().unwrap();
        assert_eq!(header.version, 4);
        assert_eq!(header.serial, 7);
        assert_eq!(header.lineage, "3f1c-aa");
        assert_eq!(header.terraform_version.as_deref(), Some("1.11.4"));
        assert_eq!(header.resources, 2);
        assert_eq!(header.instances, 3);
        assert_eq!(header.bytes, STATE.len() as u64);
    }

    #[test]
    fn outputs_read_from_a_state_are_what_output_json_prints() {
        let outputs = read_outputs(STATE.as_bytes()).unwrap().unwrap();
        assert_eq!(
            serde_json::Value::Object(outputs),
            serde_json::json!({"secret": {"sensitive": true, "type": "string", "value": "hunter2"}})
        );
        // `sensitive` is absent from the state when false; `output -json` says false.
        let state = r#"{"version":4,"serial":1,"lineage":"l","outputs":{"n":{"value":[1],"type":["list","number"]}},"resources":[]}"#;
        let outputs = read_outputs(state.as_bytes()).unwrap().unwrap();
        assert_eq!(outputs["n"]["sensitive"], false);
        assert_eq!(outputs["n"]["type"], serde_json::json!(["list", "number"]));
        // Another format, or nothing: the caller asks terraform instead.
        assert!(
            read_outputs(&br#"{"version":3,"serial":1,"lineage":"l"}"#[..])
                .unwrap()
                .is_none()
        );
        assert!(read_outputs(&b""[..]).unwrap().is_none());
        assert!(read_outputs(&b"{\"version\": 4"[..]).is_err());
    }

    #[test]
    fn the_head_of_a_state_cut_off_anywhere_says_what_it_holds_so_far() {
        let full = read_head(STATE.as_bytes());
        assert_eq!(full.serial, Some(7));
        assert_eq!(full.lineage.as_deref(), Some("3f1c-aa"));
        assert_eq!(full.terraform_version.as_deref(), Some("1.11.4"));
        // Cut after the lineage, inside it, before the serial: what is whole is read.
        let at = |needle: &str| STATE.find(needle).unwrap();
        let cut = read_head(&STATE.as_bytes()[..at("\"outputs\"") + 5]);
        assert_eq!(
            (cut.serial, cut.lineage.as_deref()),
            (Some(7), Some("3f1c-aa"))
        );
        let cut = read_head(&STATE.as_bytes()[..at("3f1c") + 2]);
        assert_eq!((cut.serial, cut.lineage), (Some(7), None));
        let cut = read_head(&STATE.as_bytes()[..at("\"serial\"")]);
        assert_eq!(
            (cut.serial, cut.terraform_version.as_deref()),
            (None, Some("1.11.4"))
        );
        // Not a state, or nothing: nothing, never a panic.
        for bytes in [
            &b""[..],
            b"<html>",
            b"[1,2]",
            b"{\"serial\": \"x\"",
            b"\xff\xfe",
        ] {
            assert_eq!(read_head(bytes), HeadFields::default());
        }
        // Every cut of the state reads without a panic.
        for n in 0..STATE.len() {
            read_head(&STATE.as_bytes()[..n]);
        }
    }

    #[test]
    fn empty_input_means_no_state() {
        assert_eq!(read_header(&b""[..]).unwrap(), None);
        assert_eq!(read_header_slice(b"").unwrap(), None);
    }

    #[test]
    fn the_slice_reader_agrees_with_the_streaming_one() {
        assert_eq!(
            read_header_slice(STATE.as_bytes()).unwrap(),
            read_header(STATE.as_bytes()).unwrap()
        );
        assert!(read_header_slice(b"{\"version\": 4").is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for input in [
            "<html>oops</html>",
            "{\"version\": 4",
            "[1,2]",
            "{\"serial\": \"x\"}",
            "{} trailing",
        ] {
            let err = read_header(input.as_bytes()).unwrap_err();
            assert!(matches!(err, StateError::Invalid(_)), "{input}: {err}");
        }
    }

    #[test]
    fn a_large_state_streams_through() {
        // 20 MB of resources: parsed without building a value for any of them.
        let resource = r#"{"mode":"managed","type":"t","name":"n","instances":[{"attributes":{"blob":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}]}"#;
        let n = 150_000;
        let mut text = String::from(r#"{"version":4,"serial":1,"lineage":"l","resources":["#);
        for i in 0..n {
            if i > 0 {
                text.push(',');
            }
            text.push_str(resource);
        }
        text.push_str("]}");
        let header = read_header(text.as_bytes()).unwrap().unwrap();
        assert_eq!(header.resources, n);
        assert_eq!(header.bytes, text.len() as u64);
    }
}
