//! What a saved plan will do, from `terraform show -json <plan>`: counts by action, the
//! addresses destroyed or replaced, drift (refresh-only), and changed outputs.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSummary {
    pub add: u64,
    pub change: u64,
    /// Deleted and not re-created.
    pub destroy: u64,
    /// Deleted and re-created (either order).
    pub replace: u64,
    /// Outputs whose value changes.
    pub outputs: u64,
    /// Moved (`moved` blocks), imported (`import` blocks) and forgotten (`removed`
    /// blocks) resources: state changes without an infrastructure change.
    #[serde(default)]
    pub moved: u64,
    #[serde(default)]
    pub imported: u64,
    #[serde(default)]
    pub forgotten: u64,
    /// Resources whose real state drifted from the recorded one (refresh-only plans).
    pub drifted: Vec<String>,
    pub destroyed: Vec<String>,
    pub replaced: Vec<String>,
}

impl PlanSummary {
    pub fn has_changes(&self) -> bool {
        let state_only = self.moved + self.imported + self.forgotten;
        self.add + self.change + self.destroy + self.replace + self.outputs + state_only > 0
            || !self.drifted.is_empty()
    }

    /// Resources the plan deletes, replacements included: what production must confirm.
    pub fn destroys(&self) -> u64 {
        self.destroy + self.replace
    }

    /// `+1 ~2 -0 ±1`-style one-liner for history tables.
    pub fn short(&self) -> String {
        let mut text = format!("+{} ~{} -{}", self.add, self.change, self.destroy);
        if self.replace > 0 {
            text.push_str(&format!(" ±{}", self.replace));
        }
        if !self.drifted.is_empty() {
            text.push_str(&format!(" drift {}", self.drifted.len()));
        }
        text
    }
}

/// A saved plan as `show -json` prints it, and its summary.
pub struct ShownPlan {
    pub summary: PlanSummary,
    /// The whole `show -json` document. It holds the plan's values, secrets included:
    /// never printed, written only to private (0600) files.
    pub json: Vec<u8>,
}

#[derive(Deserialize)]
struct PlanJson {
    #[serde(default)]
    resource_changes: Vec<ResourceChange>,
    #[serde(default)]
    resource_drift: Vec<ResourceChange>,
    #[serde(default)]
    output_changes: std::collections::BTreeMap<String, Change>,
}

#[derive(Deserialize)]
struct ResourceChange {
    address: String,
    #[serde(default)]
    previous_address: Option<String>,
    change: Change,
}

#[derive(Deserialize)]
struct Change {
    actions: Vec<String>,
    #[serde(default)]
    importing: Option<serde_json::Value>,
}

/// Parses `show -json` of a saved plan.
pub fn summarize(json: &[u8]) -> Result<PlanSummary, String> {
    // What it printed is never quoted: a plan's output can hold the values of secrets.
    let plan: PlanJson = serde_json::from_slice(json).map_err(|e| {
        format!(
            "`terraform show -json` did not print a plan ({e}; {} bytes, not shown: they may hold secrets)",
            json.len()
        )
    })?;
    let mut summary = PlanSummary::default();
    for rc in &plan.resource_changes {
        let actions: Vec<&str> = rc.change.actions.iter().map(String::as_str).collect();
        if rc
            .previous_address
            .as_deref()
            .is_some_and(|prev| prev != rc.address)
        {
            summary.moved += 1;
        }
        if rc.change.importing.is_some() {
            summary.imported += 1;
        }
        match actions.as_slice() {
            ["create"] => summary.add += 1,
            ["update"] => summary.change += 1,
            ["delete"] => {
                summary.destroy += 1;
                summary.destroyed.push(rc.address.clone());
            }
            ["delete", "create"] | ["create", "delete"] => {
                summary.replace += 1;
                summary.replaced.push(rc.address.clone());
            }
            ["forget"] => summary.forgotten += 1,
            _ => {} // no-op, read
        }
    }
    summary.drifted = plan
        .resource_drift
        .into_iter()
        .map(|rc| rc.address)
        .collect();
    summary.outputs = plan
        .output_changes
        .values()
        .filter(|c| c.actions.iter().any(|a| a != "no-op"))
        .count() as u64;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_counted_and_destroys_listed() {
        let json = br#"{
          "format_version": "1.2",
          "resource_changes": [
            {"address": "a.new", "change": {"actions": ["create"]}},
            {"address": "a.same", "change": {"actions": ["no-op"]}},
            {"address": "a.edit", "change": {"actions": ["update"]}},
            {"address": "a.gone", "change": {"actions": ["delete"]}},
            {"address": "a.swap", "change": {"actions": ["delete", "create"]}},
            {"address": "a.cbd", "change": {"actions": ["create", "delete"]}},
            {"address": "data.x.y", "change": {"actions": ["read"]}}
          ],
          "output_changes": {"o1": {"actions": ["update"]}, "o2": {"actions": ["no-op"]}}
        }"#;
        let s = summarize(json).unwrap();
        assert_eq!(
            (s.add, s.change, s.destroy, s.replace, s.outputs),
            (1, 1, 1, 2, 1)
        );
        assert_eq!(s.destroyed, ["a.gone"]);
        assert_eq!(s.replaced, ["a.swap", "a.cbd"]);
        assert_eq!(s.destroys(), 3);
        assert!(s.has_changes());
        assert_eq!(s.short(), "+1 ~1 -1 ±2");
    }

    #[test]
    fn moves_imports_and_forgets_are_changes() {
        let json = br#"{"resource_changes":[
            {"address":"a.b","previous_address":"a.a","change":{"actions":["no-op"]}},
            {"address":"a.c","change":{"actions":["no-op"],"importing":{"id":"i-1"}}},
            {"address":"a.d","change":{"actions":["forget"]}}
        ]}"#;
        let s = summarize(json).unwrap();
        assert_eq!((s.moved, s.imported, s.forgotten), (1, 1, 1));
        assert!(s.has_changes());
    }

    #[test]
    fn an_empty_plan_has_no_changes() {
        let s = summarize(br#"{"format_version":"1.0","resource_changes":[]}"#).unwrap();
        assert!(!s.has_changes());
    }

    #[test]
    fn drift_counts_as_a_change() {
        let s =
            summarize(br#"{"resource_drift":[{"address":"a.b","change":{"actions":["update"]}}]}"#)
                .unwrap();
        assert_eq!(s.drifted, ["a.b"]);
        assert!(s.has_changes());
    }

    #[test]
    fn garbage_is_an_error_that_never_quotes_what_came() {
        // Output that is not a plan may still hold a plan's values.
        let err = summarize(b"password = hunter2").unwrap_err();
        assert!(err.contains("did not print a plan"), "{err}");
        assert!(err.contains("18 bytes"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
