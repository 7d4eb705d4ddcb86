//! Which environment of the project a state file belongs to, from what tfenv can read
//! locally: where the file lies, each environment's backup manifest and, for a local
//! backend, its state file. `restore` asks before one environment's state lands in another.
//! May use: artifacts, terraform (reading a state file), backend, project, output, error.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::artifacts::backups;
use crate::backend::Backends;
use crate::error::TfenvError;
use crate::output::Printer;
use crate::project::{Environment, FileKind, Project, physical};
use crate::terraform::{self, StateHeader};

/// Another environment a state belongs to, and how tfenv knows.
#[derive(Debug, PartialEq, Eq)]
pub struct Owner {
    pub env: String,
    /// "it is listed in the backup manifest of `staging`", …
    pub evidence: String,
}

/// Refuses (exit 5) to restore into `target` a state that belongs to another environment
/// of the project, whether or not `target` has a state yet; with `force`, says so and
/// lets the tier's confirmation decide.
pub fn check_restore(
    printer: &Printer,
    project: &Project,
    target: &Environment,
    source: &Path,
    shown: &str,
    header: &StateHeader,
    force: bool,
) -> Result<(), TfenvError> {
    let Some(owner) = owner_elsewhere(project, target, source, header) else {
        return Ok(());
    };
    if !force {
        return Err(refusal(&owner, shown, &target.name));
    }
    printer.warn(&format!(
        "`{shown}` belongs to environment `{}` ({}); restoring it into `{}` as --force asks",
        owner.env, owner.evidence, target.name
    ));
    Ok(())
}

fn refusal(owner: &Owner, shown: &str, target: &str) -> TfenvError {
    let other = &owner.env;
    TfenvError::Refused {
        message: format!(
            "`{shown}` belongs to environment `{other}` ({}), not to `{target}`",
            owner.evidence
        ),
        hint: Some(format!(
            "restore one of `{target}`'s own backups (`tfenv backups {target}`), or pass --force to copy `{other}`'s state into `{target}` on purpose (and confirm)"
        )),
    }
}

/// The environment other than `target` that the state at `source` belongs to, if any.
///
/// In order: the file lies in another environment's artifacts (its backups, its local
/// state); its SHA-256 is a backup in another environment's manifest and not in
/// `target`'s; its lineage is another environment's (its backups' or its local state's)
/// and never `target`'s own. Where the file lies proves nothing for `target`: a copy of
/// another environment's backup placed in `target`'s own folder is still that
/// environment's. Files tfenv cannot read are passed over: this is evidence, not a lock.
pub fn owner_elsewhere(
    project: &Project,
    target: &Environment,
    source: &Path,
    header: &StateHeader,
) -> Option<Owner> {
    let source = physical(source);
    let backends = Backends::default();
    let identity = |env: &Environment| {
        backends
            .resolve(env, project)
            .ok()
            .and_then(|b| b.identity(env))
    };
    let target_identity = identity(target);
    // An environment configured onto the very same state is not "another" state.
    let others: Vec<&Environment> = project
        .environments
        .iter()
        .filter(|e| e.name != target.name)
        .filter(|e| target_identity.is_none() || identity(e) != target_identity)
        .collect();

    for other in &others {
        if source.starts_with(physical(&other.artifacts_dir)) {
            return Some(Owner {
                env: other.name.clone(),
                evidence: format!("it lies in `{}`", project.show(&other.artifacts_dir)),
            });
        }
    }

    let manifests: Vec<(&Environment, Vec<backups::Backup>)> = others
        .iter()
        .map(|e| {
            let manifest = backups::manifest(&backups::dir(e)).unwrap_or_default();
            (*e, manifest.records)
        })
        .collect();
    let own_manifest = backups::manifest(&backups::dir(target))
        .unwrap_or_default()
        .records;
    if let Some(sha256) = sha256_of(&source) {
        // One of `target`'s own backups (a forced copy may have made it identical to
        // another environment's).
        if own_manifest.iter().any(|b| b.sha256 == sha256) {
            return None;
        }
        for (other, manifest) in &manifests {
            if let Some(backup) = manifest.iter().find(|b| b.sha256 == sha256) {
                return Some(Owner {
                    env: other.name.clone(),
                    evidence: format!(
                        "it is backup `{}` in the manifest of `{}`",
                        backup.file, other.name
                    ),
                });
            }
        }
    }

    let lineage = &header.lineage;
    let own_lineage = own_manifest.iter().any(|b| &b.lineage == lineage)
        || local_lineage(&backends, project, target).as_ref() == Some(lineage);
    if own_lineage {
        return None;
    }
    let short: String = lineage.chars().take(8).collect();
    for (other, manifest) in &manifests {
        if manifest.iter().any(|b| &b.lineage == lineage) {
            return Some(Owner {
                env: other.name.clone(),
                evidence: format!(
                    "its lineage `{short}` is that of `{}`'s backups",
                    other.name
                ),
            });
        }
        if local_lineage(&backends, project, other).as_ref() == Some(lineage) {
            return Some(Owner {
                env: other.name.clone(),
                evidence: format!("its lineage `{short}` is that of `{}`'s state", other.name),
            });
        }
    }
    None
}

/// The lineage of `env`'s local state file, when it has a local backend and the file is
/// a readable regular file.
fn local_lineage(backends: &Backends, project: &Project, env: &Environment) -> Option<String> {
    let path = backends.resolve(env, project).ok()?.local_state_file(env)?;
    if !matches!(FileKind::of(&path), FileKind::Regular) {
        return None;
    }
    Some(terraform::read_state_file(&path).ok()??.lineage)
}

fn sha256_of(path: &Path) -> Option<String> {
    if !matches!(FileKind::of(path), FileKind::Regular) {
        return None;
    }
    let mut file = std::fs::File::open(path).ok()?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buf).ok()? {
            0 => break,
            n => hash.update(&buf[..n]),
        }
    }
    Some(hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn state(lineage: &str, serial: u64) -> String {
        format!(
            r#"{{"version":4,"terraform_version":"1.11.4","serial":{serial},"lineage":"{lineage}","outputs":{{}},"resources":[]}}"#
        )
    }

    fn write(root: &Path, rel: &str, text: &str) -> PathBuf {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// dev, staging, production, each with a local state under state/<env>/.
    fn project(root: &Path) -> Project {
        write(root, "main.tf", "terraform {\n  backend \"local\" {}\n}\n");
        for env in ["dev", "staging", "production"] {
            write(
                root,
                &format!("environments/{env}.backend.conf"),
                &format!("path = \"state/{env}/terraform.tfstate\"\n"),
            );
        }
        Project::load(root, None).unwrap()
    }

    fn header(text: &str) -> StateHeader {
        crate::terraform::state::read_header_slice(text.as_bytes())
            .unwrap()
            .unwrap()
    }

    /// A manifest line for a backup of `text`, written into `env`'s backups.
    fn back_up(root: &Path, env: &str, file: &str, text: &str) -> PathBuf {
        let path = write(root, &format!("state/{env}/backups/{file}"), text);
        let h = header(text);
        let line = serde_json::json!({
            "file": file,
            "sha256": hex::encode(Sha256::digest(text.as_bytes())),
            "bytes": text.len(),
            "serial": h.serial,
            "lineage": h.lineage,
            "terraform_version": "1.11.4",
            "created": "2026-01-01T00:00:00Z",
            "reason": "manual",
        });
        write(
            root,
            &format!("state/{env}/backups/MANIFEST.jsonl"),
            &format!("{line}\n"),
        );
        path
    }

    fn owner(project: &Project, target: &str, source: &Path) -> Option<String> {
        let text = std::fs::read_to_string(source).unwrap();
        let target = project.environment(target).unwrap();
        owner_elsewhere(project, target, source, &header(&text)).map(|o| o.env)
    }

    #[test]
    fn another_environments_backup_belongs_to_it_even_copied_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let project = project(root);
        let text = state("staging-lineage", 4);
        let backup = back_up(root, "staging", "terraform.tfstate.20260101-000000", &text);
        assert_eq!(
            owner(&project, "production", &backup).as_deref(),
            Some("staging")
        );
        // Copied out of state/: its checksum is still in staging's manifest.
        let copy = write(root, "copy.tfstate", &text);
        let found = owner_elsewhere(
            &project,
            project.environment("production").unwrap(),
            &copy,
            &header(&text),
        )
        .unwrap();
        assert_eq!(found.env, "staging");
        assert!(
            found.evidence.contains("manifest of `staging`"),
            "{found:?}"
        );
        // Its own environment restores it freely.
        assert_eq!(owner(&project, "staging", &backup), None);
    }

    #[test]
    fn another_environments_backup_copied_into_the_targets_folder_is_still_its() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let project = project(root);
        let text = state("staging-lineage", 4);
        back_up(root, "staging", "terraform.tfstate.20260101-000000", &text);
        // In production's own folder, and in its backups folder (unlisted there).
        for rel in [
            "state/production/x.tfstate",
            "state/production/backups/terraform.tfstate.20260101-000000",
        ] {
            let copy = write(root, rel, &text);
            assert_eq!(
                owner(&project, "production", &copy).as_deref(),
                Some("staging"),
                "{rel}"
            );
        }
        // A later serial of staging's lineage there: still staging's, by its lineage.
        let later = write(
            root,
            "state/production/later.tfstate",
            &state("staging-lineage", 5),
        );
        assert_eq!(
            owner(&project, "production", &later).as_deref(),
            Some("staging")
        );
        // Production's own backup in its folder is its own, even when a forced copy made
        // it identical to one of staging's.
        let own = back_up(
            root,
            "production",
            "terraform.tfstate.20260102-000000",
            &text,
        );
        assert_eq!(owner(&project, "production", &own), None);
    }

    #[test]
    fn a_state_of_another_environments_lineage_belongs_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let project = project(root);
        write(
            root,
            "state/staging/terraform.tfstate",
            &state("staging-lineage", 7),
        );
        // A later serial of staging's state, saved by hand outside tfenv.
        let saved = write(root, "saved.tfstate", &state("staging-lineage", 9));
        let found = owner_elsewhere(
            &project,
            project.environment("production").unwrap(),
            &saved,
            &header(&state("staging-lineage", 9)),
        )
        .unwrap();
        assert_eq!(found.env, "staging");
        assert!(found.evidence.contains("lineage `staging-`"), "{found:?}");
        assert!(found.evidence.contains("`staging`'s state"), "{found:?}");
    }

    #[test]
    fn a_lineage_the_target_already_has_is_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let project = project(root);
        // Production and staging share a lineage (a past forced copy): production's own
        // history makes a saved copy of it production's too.
        write(root, "state/staging/terraform.tfstate", &state("shared", 3));
        write(
            root,
            "state/production/terraform.tfstate",
            &state("shared", 5),
        );
        let saved = write(root, "saved.tfstate", &state("shared", 6));
        assert_eq!(owner(&project, "production", &saved), None);
        // A state no environment knows: not this check's business.
        let stranger = write(root, "stranger.tfstate", &state("unknown", 1));
        assert_eq!(owner(&project, "production", &stranger), None);
    }

    #[test]
    fn unreadable_evidence_is_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let project = project(root);
        std::fs::create_dir_all(root.join("state/staging")).unwrap();
        nix::unistd::mkfifo(
            &root.join("state/staging/terraform.tfstate"),
            nix::sys::stat::Mode::S_IRWXU,
        )
        .unwrap();
        write(
            root,
            "state/staging/backups/MANIFEST.jsonl",
            "\u{0}garbage\n",
        );
        let saved = write(root, "saved.tfstate", &state("x", 1));
        assert_eq!(owner(&project, "production", &saved), None);
    }
}
