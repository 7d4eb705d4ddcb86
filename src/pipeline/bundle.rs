//! Plan bundles (DESIGN.md §10): `plan --out DIR` keeps a plan with everything it was
//! planned from (`bundle.json`), and `deploy --plan DIR` checks all of it before it
//! applies exactly that plan. A bundle holds secrets (terraform's plan file does): its
//! folder is 0700 and its files 0600, and it is written so that a half-written bundle
//! never looks like one.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::TfenvError;
use crate::files;
use crate::git_info::GitInfo;
use crate::project::{Environment, Project, Tier};
use crate::terraform::StateHeader;
use crate::terraform::plan::{self, PlanSummary};

/// The `format` of the bundles this tfenv writes and reads.
pub const FORMAT: u32 = 1;
pub const PLAN: &str = "terraform.plan";
pub const PLAN_JSON: &str = "plan.json";
pub const META: &str = "bundle.json";

/// `bundle.json`: what the plan was made from, as `deploy --plan` checks it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BundleMeta {
    pub format: u32,
    pub environment: String,
    pub tier: Tier,
    /// `None` when the project is not in a git repository.
    pub git: Option<GitInfo>,
    pub terraform_version: String,
    pub tfenv_version: String,
    /// The backend's type, settings, config content and workspace (no paths: the bundle
    /// is applied from other clones).
    pub backend_fingerprint: String,
    pub var_files: Vec<VarFile>,
    /// The state as planned against; `None` when there was none yet.
    pub state: Option<StateRef>,
    pub summary: PlanSummary,
    pub created: DateTime<Utc>,
    pub sha256: Checksums,
}

/// A var file the plan used: its path relative to the project root, and its content's sha256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VarFile {
    pub path: String,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRef {
    pub lineage: String,
    pub serial: u64,
}

impl StateRef {
    pub fn of(header: &StateHeader) -> StateRef {
        StateRef {
            lineage: header.lineage.clone(),
            serial: header.serial,
        }
    }
}

impl std::fmt::Display for StateRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lineage {} serial {}", self.lineage, self.serial)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksums {
    #[serde(rename = "terraform.plan")]
    pub plan: String,
    #[serde(rename = "plan.json")]
    pub plan_json: String,
}

/// A bundle read from its folder: `bundle.json` parsed, the other files not yet checked.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub meta: BundleMeta,
    /// The sha256 of `bundle.json`: the bundle's identity in history.
    pub sha256: String,
}

/// Where a bundle is, for the JSON document and history.
#[derive(Clone, Debug, Serialize)]
pub struct BundleRef {
    pub dir: String,
    pub sha256: String,
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A refusal of `deploy --plan` naming the check and both values.
pub fn mismatch(
    check: &str,
    expected: impl std::fmt::Display,
    found: impl std::fmt::Display,
    hint: impl Into<String>,
) -> TfenvError {
    TfenvError::Refused {
        message: format!(
            "plan bundle check `{check}` failed: expected `{expected}`, found `{found}`"
        ),
        hint: Some(hint.into()),
    }
}

/// The var files of `env` as a bundle records them.
pub fn var_files(project: &Project, env: &Environment) -> anyhow::Result<Vec<VarFile>> {
    env.var_files
        .iter()
        .map(|path| {
            let bytes = files::read_regular(path)?
                .ok_or_else(|| anyhow::anyhow!("var file `{}` does not exist", path.display()))?;
            Ok(VarFile {
                path: project.show(path),
                sha256: sha256(&bytes),
            })
        })
        .collect()
}

impl Bundle {
    /// Reads `DIR/bundle.json`. A folder that is not a bundle of a format this tfenv
    /// knows is refused.
    pub fn open(dir: &Path) -> anyhow::Result<Bundle> {
        if !dir.is_dir() {
            return Err(TfenvError::usage(
                format!("--plan `{}`: no such directory", dir.display()),
                Some("give the folder `tfenv plan <env> --out DIR` wrote".to_string()),
            )
            .into());
        }
        let not_a_bundle = |why: String| -> anyhow::Error {
            TfenvError::Refused {
                message: format!("`{}` is not a plan bundle: {why}", dir.display()),
                hint: Some("give the folder `tfenv plan <env> --out DIR` wrote".to_string()),
            }
            .into()
        };
        let Some(bytes) = files::read_regular(&dir.join(META))? else {
            return Err(not_a_bundle(format!("it has no {META}")));
        };
        #[derive(Deserialize)]
        struct Format {
            format: u32,
        }
        let format: Format = serde_json::from_slice(&bytes)
            .map_err(|e| not_a_bundle(format!("{META} does not parse ({e})")))?;
        if format.format != FORMAT {
            return Err(mismatch(
                "format",
                FORMAT,
                format.format,
                "apply it with the tfenv that wrote it, or plan again",
            )
            .into());
        }
        let meta: BundleMeta = serde_json::from_slice(&bytes)
            .map_err(|e| not_a_bundle(format!("{META} does not parse ({e})")))?;
        Ok(Bundle {
            dir: dir.to_path_buf(),
            meta,
            sha256: sha256(&bytes),
        })
    }

    pub fn plan_file(&self) -> PathBuf {
        self.dir.join(PLAN)
    }

    /// Checks terraform.plan and plan.json against their recorded checksums; the plan's
    /// summary, read from plan.json.
    pub fn verify_files(&self) -> anyhow::Result<PlanSummary> {
        let hint = "the bundle was changed or damaged after it was written; plan again with `tfenv plan <env> --out DIR`";
        let read = |name: &str| -> anyhow::Result<(Vec<u8>, String)> {
            Ok(match files::read_regular(&self.dir.join(name))? {
                Some(bytes) => {
                    let sum = sha256(&bytes);
                    (bytes, sum)
                }
                None => (Vec::new(), "missing".to_string()),
            })
        };
        let (_, plan_sum) = read(PLAN)?;
        if plan_sum != self.meta.sha256.plan {
            return Err(mismatch(
                &format!("sha256 of {PLAN}"),
                &self.meta.sha256.plan,
                plan_sum,
                hint,
            )
            .into());
        }
        let (json, json_sum) = read(PLAN_JSON)?;
        if json_sum != self.meta.sha256.plan_json {
            return Err(mismatch(
                &format!("sha256 of {PLAN_JSON}"),
                &self.meta.sha256.plan_json,
                json_sum,
                hint,
            )
            .into());
        }
        plan::summarize(&json)
            .map_err(|why| anyhow::anyhow!("reading the bundle's {PLAN_JSON}: {why}"))
    }

    pub fn reference(&self, project: &Project) -> BundleRef {
        BundleRef {
            dir: project.show(&self.dir),
            sha256: self.sha256.clone(),
        }
    }
}

/// Writes a bundle into `dir`: built in a private temporary folder beside it (bundle.json
/// last), then renamed into place, so a bundle at `dir` is always whole. An existing
/// bundle in `dir` is replaced; an empty `dir` is used; a `dir` holding anything else
/// is refused. Returns the sha256 of bundle.json.
pub fn write(
    dir: &Path,
    plan_file: &Path,
    plan_json: &[u8],
    mut meta: BundleMeta,
) -> anyhow::Result<String> {
    use anyhow::Context;
    check_replaceable(dir)?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating `{}`", parent.display()))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".to_string());
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temporary folder in `{}`", parent.display()))?;
    files::ensure_private_dir(temp.path())?;
    let plan_bytes =
        std::fs::read(plan_file).with_context(|| format!("reading `{}`", plan_file.display()))?;
    files::write_atomic(&temp.path().join(PLAN), &plan_bytes, files::PRIVATE_FILE)?;
    files::write_atomic(&temp.path().join(PLAN_JSON), plan_json, files::PRIVATE_FILE)?;
    meta.sha256 = Checksums {
        plan: sha256(&plan_bytes),
        plan_json: sha256(plan_json),
    };
    let mut json = serde_json::to_vec_pretty(&meta)?;
    json.push(b'\n');
    files::write_atomic(&temp.path().join(META), &json, files::PRIVATE_FILE)?;

    // Move an old bundle aside first (rename cannot replace a folder that is not
    // empty), then the new one into place, then drop the old one.
    let old = match dir.join(META).is_file() {
        true => {
            let aside = tempfile::Builder::new()
                .prefix(&format!(".{name}.old-"))
                .tempdir_in(&parent)
                .with_context(|| format!("creating a temporary folder in `{}`", parent.display()))?
                .keep();
            std::fs::rename(dir, &aside)
                .with_context(|| format!("moving the old bundle `{}` aside", dir.display()))?;
            Some(aside)
        }
        false => None,
    };
    let built = temp.keep();
    if let Err(err) = std::fs::rename(&built, dir) {
        let _ = std::fs::remove_dir_all(&built);
        if let Some(old) = &old {
            let _ = std::fs::rename(old, dir);
        }
        return Err(err).with_context(|| format!("moving the bundle into `{}`", dir.display()));
    }
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(sha256(&json))
}

/// `dir` may take a bundle: it does not exist, is empty, or holds a bundle (bundle.json
/// and nothing but a bundle's files). Checked before the plan too, so that a wrong
/// `--out` costs no plan.
pub fn check_replaceable(dir: &Path) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) if dir.exists() => {
            return Err(TfenvError::Refused {
                message: format!("--out `{}` exists and is not a folder", dir.display()),
                hint: Some("give a new or empty folder, or an existing plan bundle".to_string()),
            }
            .into());
        }
        Err(err) => {
            return Err(anyhow::Error::new(err).context(format!("reading `{}`", dir.display())));
        }
    };
    let names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let bundle_files = [PLAN, PLAN_JSON, META];
    let is_bundle =
        names.iter().any(|n| n == META) && names.iter().all(|n| bundle_files.contains(&n.as_str()));
    if names.is_empty() || is_bundle {
        return Ok(());
    }
    let mut listed: Vec<&str> = names.iter().map(String::as_str).take(5).collect();
    listed.sort();
    Err(TfenvError::Refused {
        message: format!(
            "--out `{}` is not empty and not a plan bundle (it holds {}{}); nothing was written",
            dir.display(),
            listed.join(", "),
            if names.len() > 5 { ", …" } else { "" }
        ),
        hint: Some("give a new or empty folder, or an existing plan bundle to replace".to_string()),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn meta() -> BundleMeta {
        BundleMeta {
            format: FORMAT,
            environment: "dev".to_string(),
            tier: Tier::Development,
            git: None,
            terraform_version: "1.11.4".to_string(),
            tfenv_version: "0.1.0".to_string(),
            backend_fingerprint: "f".to_string(),
            var_files: Vec::new(),
            state: None,
            summary: PlanSummary::default(),
            created: Utc::now(),
            sha256: Checksums {
                plan: String::new(),
                plan_json: String::new(),
            },
        }
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_written_bundle_is_private_and_opens_with_matching_checksums() {
        let tmp = tempfile::tempdir().unwrap();
        let plan = tmp.path().join("p");
        std::fs::write(&plan, b"plan bytes").unwrap();
        let dir = tmp.path().join("out/dev");
        let sum = write(&dir, &plan, br#"{"resource_changes":[]}"#, meta()).unwrap();
        assert_eq!(mode(&dir), 0o700);
        for name in [PLAN, PLAN_JSON, META] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
        let bundle = Bundle::open(&dir).unwrap();
        assert_eq!(bundle.sha256, sum);
        assert!(bundle.verify_files().is_ok());
        // Nothing temporary is left beside it.
        let left: Vec<_> = std::fs::read_dir(tmp.path().join("out")).unwrap().collect();
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn an_existing_bundle_is_replaced_and_anything_else_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let plan = tmp.path().join("p");
        std::fs::write(&plan, b"one").unwrap();
        let dir = tmp.path().join("b");
        write(&dir, &plan, b"{}", meta()).unwrap();
        std::fs::write(&plan, b"two").unwrap();
        write(&dir, &plan, b"{}", meta()).unwrap();
        assert_eq!(std::fs::read(dir.join(PLAN)).unwrap(), b"two");

        let other = tmp.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("notes.txt"), "x").unwrap();
        let err = write(&other, &plan, b"{}", meta()).unwrap_err();
        assert!(
            format!("{err:#}").contains("not empty and not a plan bundle"),
            "{err:#}"
        );
        assert!(other.join("notes.txt").is_file());
        assert!(!other.join(META).exists());
    }

    #[test]
    fn a_changed_byte_fails_the_checksum_naming_both_values() {
        let tmp = tempfile::tempdir().unwrap();
        let plan = tmp.path().join("p");
        std::fs::write(&plan, b"plan bytes").unwrap();
        let dir = tmp.path().join("b");
        write(&dir, &plan, b"{}", meta()).unwrap();
        std::fs::write(dir.join(PLAN), b"plan bytez").unwrap();
        let err = Bundle::open(&dir).unwrap().verify_files().unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("`sha256 of terraform.plan` failed: expected `"),
            "{text}"
        );
        assert!(text.contains(&sha256(b"plan bytez")), "{text}");
    }
}
