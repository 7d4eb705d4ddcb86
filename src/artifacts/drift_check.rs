//! What a drift check found, from `terraform show -json` of its plan (DESIGN.md §11):
//! the resources changed outside Terraform (`resource_drift`) and the changes the code
//! would make that are not drift (`resource_changes`: code not yet applied).
//!
//! Only names leave this module: addresses, actions and the names of changed attributes.
//! The plan's values (sensitive ones included) are compared here and dropped.
//!
//! **Pending vs drift.** A plan after drift also plans to undo it: a resource deleted
//! outside Terraform shows up again as `create`, one edited outside as an `update` back.
//! Such a change is not pending work; it is the drift seen from the other side. A change
//! of a drifted address counts as pending only when it does more than undo the drift:
//! - after a `delete` drift, a `create` is the undo when every attribute it knows (not
//!   "known after apply") has the value the resource had before the drift;
//! - after an `update` drift, an `update` is the undo when every attribute it changes
//!   goes back to its value before the drift (and none is "known after apply");
//! - any other change of a drifted address (a replacement, a deletion) is pending.
//!
//! So "someone edited the file, and the code changed too" lists both the drift and the
//! pending change; "someone edited the file" lists the drift alone.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

use super::drift::{DriftAction, DriftedResource, PendingChange, Severity};
use crate::project::Tier;

/// A check's findings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    pub drifted: Vec<DriftedResource>,
    pub pending: Vec<PendingChange>,
}

impl Findings {
    /// The worst severity among the drifted resources; `None` when nothing drifted.
    pub fn severity(&self) -> Option<Severity> {
        self.drifted.iter().map(|d| d.severity).max()
    }
}

#[derive(Deserialize)]
struct Shown {
    #[serde(default)]
    resource_drift: Vec<Resource>,
    #[serde(default)]
    resource_changes: Vec<Resource>,
}

#[derive(Deserialize)]
struct Resource {
    address: String,
    #[serde(default)]
    mode: Option<String>,
    /// A deposed object of the address (create-before-destroy leftovers): its own entry.
    #[serde(default)]
    deposed: Option<String>,
    change: Change,
}

#[derive(Deserialize)]
struct Change {
    actions: Vec<String>,
    #[serde(default)]
    before: Value,
    #[serde(default)]
    after: Value,
    #[serde(default)]
    after_unknown: Value,
}

impl Resource {
    fn is_data(&self) -> bool {
        self.mode.as_deref() == Some("data")
    }

    fn key(&self) -> (&str, Option<&str>) {
        (&self.address, self.deposed.as_deref())
    }
}

/// The findings of `show -json` of a drift check's plan, severities by `tier`. A
/// document that is not a plan is an error saying what is wrong with it (never its text).
pub fn read(tier: Tier, json: &[u8]) -> Result<Findings, String> {
    let shown: Shown = serde_json::from_slice(json)
        .map_err(|err| format!("`terraform show -json` did not print a plan ({err})"))?;
    let mut findings = Findings::default();
    let mut drifts: BTreeMap<(&str, Option<&str>), (&Change, DriftAction)> = BTreeMap::new();
    for resource in shown.resource_drift.iter().filter(|r| !r.is_data()) {
        let change = &resource.change;
        let action = match change.actions.as_slice() {
            [only] if only == "delete" => DriftAction::Delete,
            _ if change.after.is_null() => DriftAction::Delete,
            _ if change.actions.iter().all(|a| a == "no-op" || a == "read") => continue,
            _ => DriftAction::Update,
        };
        let attributes = match action {
            DriftAction::Delete => Vec::new(),
            DriftAction::Update => changed(&change.before, &change.after)
                .into_iter()
                .map(str::to_string)
                .collect(),
        };
        drifts.insert(resource.key(), (change, action));
        findings.drifted.push(DriftedResource {
            address: resource.address.clone(),
            action,
            attributes,
            severity: Severity::of(tier, action),
        });
    }
    for resource in shown.resource_changes.iter().filter(|r| !r.is_data()) {
        let change = &resource.change;
        if change.actions.iter().all(|a| a == "no-op" || a == "read") {
            continue;
        }
        if let Some((drift, action)) = drifts.get(&resource.key())
            && undoes(drift, *action, change)
        {
            continue;
        }
        findings.pending.push(PendingChange {
            address: resource.address.clone(),
            actions: change.actions.clone(),
        });
    }
    Ok(findings)
}

/// Whether `change` does nothing but undo the drift `drift` (see the module's rule).
fn undoes(drift: &Change, action: DriftAction, change: &Change) -> bool {
    let before_drift = &drift.before;
    let known = |key: &str| !change.after_unknown.get(key).is_some_and(|u| *u != false);
    match (action, change.actions.as_slice()) {
        (DriftAction::Delete, [create]) if create == "create" => {
            let Some(after) = change.after.as_object() else {
                return false;
            };
            after
                .iter()
                .filter(|(key, _)| known(key))
                .all(|(key, value)| before_drift.get(key).unwrap_or(&Value::Null) == value)
        }
        (DriftAction::Update, [update]) if update == "update" => {
            changed(&change.before, &change.after)
                .into_iter()
                .all(|key| {
                    known(key)
                        && before_drift.get(key).unwrap_or(&Value::Null)
                            == change.after.get(key).unwrap_or(&Value::Null)
                })
        }
        _ => false,
    }
}

/// The top-level attributes whose values differ between two objects (a missing one is
/// `null`), sorted.
fn changed<'a>(before: &'a Value, after: &'a Value) -> BTreeSet<&'a str> {
    let keys = |object: &'a Value| object.as_object().into_iter().flat_map(|map| map.keys());
    keys(before)
        .chain(keys(after))
        .filter(|key| {
            before.get(*key).unwrap_or(&Value::Null) != after.get(*key).unwrap_or(&Value::Null)
        })
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "hunter2-must-not-leak";

    /// What terraform 1.11 prints for a file edited outside Terraform (content and the
    /// sensitive `secret` changed), with the plan to set it back.
    fn edited() -> String {
        format!(
            r#"{{
  "format_version": "1.2",
  "terraform_version": "1.11.4",
  "resource_drift": [{{
    "address": "tfenvtest_file.config", "mode": "managed", "type": "tfenvtest_file", "name": "config",
    "provider_name": "registry.terraform.io/tfenv/tfenvtest",
    "change": {{
      "actions": ["update"],
      "before": {{"id": "/srv/a", "path": "/srv/a", "content": "v1", "secret": "old-secret"}},
      "after": {{"id": "/srv/a", "path": "/srv/a", "content": "edited", "secret": "{SECRET}"}},
      "after_unknown": {{}},
      "before_sensitive": {{"secret": true}},
      "after_sensitive": {{"secret": true}}
    }}
  }}],
  "resource_changes": [{{
    "address": "tfenvtest_file.config", "mode": "managed", "type": "tfenvtest_file", "name": "config",
    "change": {{
      "actions": ["update"],
      "before": {{"id": "/srv/a", "path": "/srv/a", "content": "edited", "secret": "{SECRET}"}},
      "after": {{"id": "/srv/a", "path": "/srv/a", "content": "v1", "secret": "old-secret"}},
      "after_unknown": {{}},
      "before_sensitive": {{"secret": true}},
      "after_sensitive": {{"secret": true}}
    }}
  }},
  {{
    "address": "data.tfenvtest_file.seen", "mode": "data",
    "change": {{"actions": ["read"], "before": null, "after": {{}}, "after_unknown": {{}}}}
  }},
  {{
    "address": "tfenvtest_file.other", "mode": "managed",
    "change": {{"actions": ["no-op"], "before": {{"content": "x"}}, "after": {{"content": "x"}}, "after_unknown": {{}}}}
  }}]
}}"#
        )
    }

    #[test]
    fn an_edit_outside_terraform_is_update_drift_naming_its_attributes_sensitive_included() {
        let found = read(Tier::Staging, edited().as_bytes()).unwrap();
        assert_eq!(
            found.drifted,
            vec![DriftedResource {
                address: "tfenvtest_file.config".into(),
                action: DriftAction::Update,
                attributes: vec!["content".into(), "secret".into()],
                severity: Severity::Medium,
            }]
        );
        // The plan's update back is the drift's undo, not pending work; the data source's
        // read and the no-op are nothing.
        assert!(found.pending.is_empty(), "{:?}", found.pending);
        assert_eq!(found.severity(), Some(Severity::Medium));
        // No value of the plan survives in what is kept.
        let kept = format!("{found:?}");
        assert!(
            !kept.contains(SECRET) && !kept.contains("old-secret") && !kept.contains("edited"),
            "{kept}"
        );
        let production = read(Tier::Production, edited().as_bytes()).unwrap();
        assert_eq!(production.severity(), Some(Severity::High));
    }

    const DELETED: &str = r#"{
  "format_version": "1.2",
  "resource_drift": [{
    "address": "tfenvtest_file.config", "mode": "managed",
    "change": {"actions": ["delete"], "before": {"id": "/srv/a", "path": "/srv/a", "content": "v1"}, "after": null, "after_unknown": {}}
  }],
  "resource_changes": [{
    "address": "tfenvtest_file.config", "mode": "managed",
    "change": {"actions": ["create"], "before": null, "after": {"path": "/srv/a", "content": "v1"}, "after_unknown": {"id": true}}
  }]
}"#;

    #[test]
    fn a_deletion_outside_terraform_is_delete_drift_and_critical_in_production() {
        let found = read(Tier::Production, DELETED.as_bytes()).unwrap();
        assert_eq!(found.drifted.len(), 1);
        assert_eq!(found.drifted[0].action, DriftAction::Delete);
        assert!(found.drifted[0].attributes.is_empty());
        assert_eq!(found.severity(), Some(Severity::Critical));
        // Creating it again as it was is the undo.
        assert!(found.pending.is_empty(), "{:?}", found.pending);
        assert_eq!(
            read(Tier::Staging, DELETED.as_bytes()).unwrap().severity(),
            Some(Severity::High)
        );
        assert_eq!(
            read(Tier::Development, DELETED.as_bytes())
                .unwrap()
                .severity(),
            Some(Severity::Low)
        );
    }

    #[test]
    fn a_deleted_resource_whose_code_changed_too_is_drift_and_pending() {
        let json = DELETED.replace(
            r#""after": {"path": "/srv/a", "content": "v1"}"#,
            r#""after": {"path": "/srv/a", "content": "v2"}"#,
        );
        let found = read(Tier::Development, json.as_bytes()).unwrap();
        assert_eq!(found.drifted.len(), 1);
        assert_eq!(
            found.pending,
            vec![PendingChange {
                address: "tfenvtest_file.config".into(),
                actions: vec!["create".into()],
            }]
        );
    }

    #[test]
    fn an_edited_resource_whose_code_changed_too_is_drift_and_pending() {
        // The code now wants `v2`: the update does not go back to the value before the drift.
        let json = edited().replace(
            r#""after": {"id": "/srv/a", "path": "/srv/a", "content": "v1""#,
            r#""after": {"id": "/srv/a", "path": "/srv/a", "content": "v2""#,
        );
        let found = read(Tier::Staging, json.as_bytes()).unwrap();
        assert_eq!(found.drifted.len(), 1);
        assert_eq!(found.pending.len(), 1);
        assert_eq!(found.pending[0].actions, ["update"]);
    }

    #[test]
    fn code_not_yet_applied_is_pending_not_drift() {
        let json = r#"{
  "format_version": "1.2",
  "resource_changes": [
    {"address": "tfenvtest_file.new", "mode": "managed",
     "change": {"actions": ["create"], "before": null, "after": {"content": "n"}, "after_unknown": {"id": true}}},
    {"address": "tfenvtest_file.moved", "mode": "managed",
     "change": {"actions": ["delete", "create"], "before": {"content": "a"}, "after": {"content": "b"}, "after_unknown": {}}},
    {"address": "tfenvtest_file.same", "mode": "managed",
     "change": {"actions": ["no-op"], "before": {"content": "a"}, "after": {"content": "a"}, "after_unknown": {}}},
    {"address": "data.tfenvtest_file.d", "mode": "data",
     "change": {"actions": ["read"], "before": null, "after": {}, "after_unknown": {}}}
  ]
}"#;
        let found = read(Tier::Production, json.as_bytes()).unwrap();
        assert!(found.drifted.is_empty());
        assert_eq!(found.severity(), None);
        let pending: Vec<(&str, Vec<String>)> = found
            .pending
            .iter()
            .map(|p| (p.address.as_str(), p.actions.clone()))
            .collect();
        assert_eq!(
            pending,
            [
                ("tfenvtest_file.new", vec!["create".to_string()]),
                (
                    "tfenvtest_file.moved",
                    vec!["delete".to_string(), "create".to_string()]
                ),
            ]
        );
    }

    #[test]
    fn a_plan_without_changes_finds_nothing_and_garbage_is_an_error() {
        let found = read(Tier::Production, br#"{"format_version":"1.2"}"#).unwrap();
        assert_eq!(found, Findings::default());
        let err = read(Tier::Production, b"Error: something\n").unwrap_err();
        assert!(err.contains("did not print a plan"), "{err}");
        assert!(!err.contains("something"), "{err}");
    }
}
