//! Plan bundles (DESIGN.md §10): `plan --out DIR` keeps a plan with everything it was
//! planned from (`bundle.json`), and `deploy --plan DIR` checks all of it before it
//! applies exactly that plan. A bundle holds secrets (terraform's plan file does): its
//! folder is 0700 and its files 0600, and it is written so that a half-written bundle
//! never looks like one. With `--encrypt`, the plan files are written encrypted with
//! age (`terraform.plan.age`, `plan.json.age`); `bundle.json` stays clear, and the clear
//! plan is only ever in memory or in a 0600 file under `state/<env>/` for one run.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use age::secrecy::SecretString;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::TfenvError;
use crate::files;
use crate::git_info::GitInfo;
use crate::project::{Environment, Project, Tier};
use crate::settings::{self, BundleKeys, Sealing};
use crate::terraform::StateHeader;
use crate::terraform::plan::{self, PlanSummary};

/// The `format` of the clear bundles this tfenv writes and reads.
pub const FORMAT: u32 = 1;
/// The `format` of encrypted bundles: a tfenv that knows only format 1 refuses them by
/// their format, instead of missing their plan files.
pub const ENCRYPTED_FORMAT: u32 = 2;
pub const PLAN: &str = "terraform.plan";
pub const PLAN_JSON: &str = "plan.json";
pub const PLAN_AGE: &str = "terraform.plan.age";
pub const PLAN_JSON_AGE: &str = "plan.json.age";
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
    /// Of the clear files (decrypted, for an encrypted bundle).
    pub sha256: Checksums,
    /// `--encrypt`: for whom, and the checksums of the encrypted files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
}

/// How an encrypted bundle's plan files were encrypted (age), for whom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// `recipients` (age public keys) or `passphrase`.
    pub to: EncryptedTo,
    /// The age public keys (empty with a passphrase).
    pub recipients: Vec<String>,
    /// Of the encrypted files as they are in the bundle: a changed or swapped file is
    /// refused before any decryption.
    pub sha256: EncryptedChecksums,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncryptedTo {
    Recipients,
    Passphrase,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedChecksums {
    #[serde(rename = "terraform.plan.age")]
    pub plan: String,
    #[serde(rename = "plan.json.age")]
    pub plan_json: String,
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
    /// How messages name it: its folder, or `ledger:<ID>` for a published plan (whose
    /// folder is a temporary one under `state/<env>/`).
    pub label: String,
    /// `ledger:<ID>`: downloaded from the shared ledger.
    pub published: bool,
    pub meta: BundleMeta,
    /// The sha256 of `bundle.json`: the bundle's identity in history.
    pub sha256: String,
    /// What an encrypted bundle is decrypted with (`TFENV_BUNDLE_IDENTITY`, `…_PASSPHRASE`).
    pub keys: BundleKeys,
}

/// The bundle's plan files, checked: the plan's summary, and the plan file's bytes as
/// they were checked (decrypted for an encrypted bundle). Those bytes, written to a 0600
/// file under `state/<env>/`, are what is applied: the bundle's folder may change while
/// the run waits for init, a lock or an answer, and what was checked must be what runs.
pub struct Verified {
    pub summary: PlanSummary,
    pub plan: Vec<u8>,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the plan: it holds secrets.
        f.debug_struct("Verified")
            .field("summary", &self.summary)
            .field("plan_bytes", &self.plan.len())
            .finish()
    }
}

/// Where a bundle is, for the JSON document and history.
#[derive(Clone, Debug, Serialize)]
pub struct BundleRef {
    pub dir: String,
    pub sha256: String,
    /// Its plan files are encrypted (`plan --encrypt`).
    pub encrypted: bool,
    /// The folder, absolute: for the `deploy --plan` command printed to the user.
    #[serde(skip)]
    pub path: PathBuf,
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
    /// Reads `DIR/bundle.json`, for `deploy <env> --plan DIR`. A folder that is not a
    /// bundle of a format this tfenv knows is refused.
    pub fn open(dir: &Path, env: &str) -> anyhow::Result<Bundle> {
        Bundle::open_as(dir, env, None)
    }

    /// `open` of a published plan downloaded into `dir`, named `label` (`ledger:<ID>`).
    pub fn open_published(dir: &Path, env: &str, label: &str) -> anyhow::Result<Bundle> {
        Bundle::open_as(dir, env, Some(label))
    }

    fn open_as(dir: &Path, env: &str, label: Option<&str>) -> anyhow::Result<Bundle> {
        let published = label.is_some();
        let label = label.map_or_else(|| dir.display().to_string(), str::to_string);
        let give = match published {
            false => format!("give the folder `tfenv plan {env} --out DIR` wrote"),
            true => format!("plan and publish again: `tfenv plan {env} --publish`"),
        };
        if !dir.is_dir() {
            return Err(TfenvError::usage(
                format!("--plan `{}`: no such directory", dir.display()),
                Some(give),
            )
            .into());
        }
        let not_a_bundle = |why: String| -> anyhow::Error {
            TfenvError::Refused {
                message: format!("`{label}` is not a plan bundle: {why}"),
                hint: Some(give.clone()),
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
        if format.format != FORMAT && format.format != ENCRYPTED_FORMAT {
            return Err(mismatch(
                "format",
                format!("{FORMAT} or {ENCRYPTED_FORMAT}"),
                format.format,
                "apply it with the tfenv that wrote it, or plan again",
            )
            .into());
        }
        let meta: BundleMeta = serde_json::from_slice(&bytes)
            .map_err(|e| not_a_bundle(format!("{META} does not parse ({e})")))?;
        match (meta.format == ENCRYPTED_FORMAT, meta.encryption.is_some()) {
            (true, false) => {
                return Err(not_a_bundle(format!(
                    "format {ENCRYPTED_FORMAT} without `encryption`"
                )));
            }
            (false, true) => {
                return Err(not_a_bundle(format!("format {FORMAT} with `encryption`")));
            }
            _ => {}
        }
        Ok(Bundle {
            dir: dir.to_path_buf(),
            label,
            published,
            meta,
            sha256: sha256(&bytes),
            keys: BundleKeys::default(),
        })
    }

    /// The keys an encrypted bundle is decrypted with.
    pub fn with_keys(mut self, keys: BundleKeys) -> Bundle {
        self.keys = keys;
        self
    }

    pub fn is_encrypted(&self) -> bool {
        self.meta.encryption.is_some()
    }

    /// The file a reviewer reads: `plan.json`, or `plan.json.age`.
    pub fn plan_json_file(&self) -> PathBuf {
        self.dir.join(match self.is_encrypted() {
            true => PLAN_JSON_AGE,
            false => PLAN_JSON,
        })
    }

    /// How a refusal says to make a new plan: published again (`--publish`) for a
    /// published plan, else a new bundle (`--out DIR`).
    pub fn plan_again(&self, env: &str) -> String {
        match self.published {
            true => format!("plan again with `tfenv plan {env} --publish`"),
            false => format!("plan again with `tfenv plan {env} --out DIR`"),
        }
    }

    /// Checks terraform.plan and plan.json against their recorded checksums (an
    /// encrypted bundle's files first as they are, then decrypted); the plan's summary,
    /// read from plan.json.
    pub fn verify_files(&self) -> anyhow::Result<Verified> {
        let hint = format!(
            "the bundle was changed or damaged after it was written; {}",
            self.plan_again(&self.meta.environment)
        );
        let hint = hint.as_str();
        if let Some(encryption) = &self.meta.encryption {
            return self.verify_encrypted(encryption, hint);
        }
        let read = |name: &str| -> anyhow::Result<(Vec<u8>, String)> {
            Ok(match files::read_regular(&self.dir.join(name))? {
                Some(bytes) => {
                    let sum = sha256(&bytes);
                    (bytes, sum)
                }
                None => (Vec::new(), "missing".to_string()),
            })
        };
        let (plan_bytes, plan_sum) = read(PLAN)?;
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
        let summary = plan::summarize(&json)
            .map_err(|why| anyhow::anyhow!("reading the bundle's {PLAN_JSON}: {why}"))?;
        Ok(Verified {
            summary,
            plan: plan_bytes,
        })
    }

    fn verify_encrypted(&self, encryption: &Encryption, hint: &str) -> anyhow::Result<Verified> {
        // The encrypted files as they are: a changed or swapped file costs no decryption.
        let read = |name: &str, expected: &str| -> anyhow::Result<Vec<u8>> {
            let bytes = files::read_regular(&self.dir.join(name))?;
            let found = bytes
                .as_deref()
                .map_or_else(|| "missing".to_string(), sha256);
            if found != expected {
                return Err(mismatch(&format!("sha256 of {name}"), expected, found, hint).into());
            }
            Ok(bytes.unwrap_or_default())
        };
        let json_age = read(PLAN_JSON_AGE, &encryption.sha256.plan_json)?;
        let plan_age = read(PLAN_AGE, &encryption.sha256.plan)?;
        let json = self.decrypt(encryption, PLAN_JSON_AGE, &json_age)?;
        let found = sha256(&json);
        if found != self.meta.sha256.plan_json {
            return Err(mismatch(
                &format!("sha256 of {PLAN_JSON} (decrypted)"),
                &self.meta.sha256.plan_json,
                found,
                hint,
            )
            .into());
        }
        let plan_bytes = self.decrypt(encryption, PLAN_AGE, &plan_age)?;
        let found = sha256(&plan_bytes);
        if found != self.meta.sha256.plan {
            return Err(mismatch(
                &format!("sha256 of {PLAN} (decrypted)"),
                &self.meta.sha256.plan,
                found,
                hint,
            )
            .into());
        }
        let summary = plan::summarize(&json)
            .map_err(|why| anyhow::anyhow!("reading the bundle's {PLAN_JSON_AGE}: {why}"))?;
        Ok(Verified {
            summary,
            plan: plan_bytes,
        })
    }

    /// One of the bundle's encrypted files, decrypted in memory with the keys the
    /// environment gives. A missing or wrong key is a refusal naming what was tried.
    fn decrypt(
        &self,
        encryption: &Encryption,
        name: &str,
        ciphertext: &[u8],
    ) -> anyhow::Result<Vec<u8>> {
        let file = self.dir.join(name);
        let refused = |message: String, hint: String| -> anyhow::Error {
            TfenvError::Refused {
                message,
                hint: Some(hint),
            }
            .into()
        };
        let damaged = |err: age::DecryptError| {
            refused(
                format!("`{}` does not decrypt: {err}", file.display()),
                "the bundle was changed or damaged after it was written; plan again with `tfenv plan <env> --out DIR --encrypt`".to_string(),
            )
        };
        let decryptor = age::Decryptor::new(ciphertext).map_err(damaged)?;
        let reader = match encryption.to {
            EncryptedTo::Passphrase => {
                let Some(passphrase) = &self.keys.passphrase else {
                    return Err(refused(
                        format!(
                            "plan bundle `{}` is encrypted with a passphrase, and {} is not set",
                            self.label,
                            settings::PASSPHRASE_VAR
                        ),
                        format!(
                            "set {} to the passphrase it was planned with",
                            settings::PASSPHRASE_VAR
                        ),
                    ));
                };
                let identity = age::scrypt::Identity::new(SecretString::from(passphrase.0.clone()));
                decryptor
                    .decrypt(std::iter::once(&identity as &dyn age::Identity))
                    .map_err(|err| match err {
                        age::DecryptError::DecryptionFailed
                        | age::DecryptError::KeyDecryptionFailed
                        | age::DecryptError::NoMatchingKeys => refused(
                            format!(
                                "{} does not decrypt plan bundle `{}` (a wrong passphrase)",
                                settings::PASSPHRASE_VAR,
                                self.label
                            ),
                            format!(
                                "set {} to the passphrase it was planned with",
                                settings::PASSPHRASE_VAR
                            ),
                        ),
                        err => damaged(err),
                    })?
            }
            EncryptedTo::Recipients => {
                let to = encryption.recipients.join(", ");
                let want = format!(
                    "set {} to the age identity file (or the AGE-SECRET-KEY-1… key) of one of its recipients: {to}",
                    settings::IDENTITY_VAR
                );
                let Some(value) = &self.keys.identity else {
                    return Err(refused(
                        format!(
                            "plan bundle `{}` is encrypted to {to}, and {} is not set",
                            self.label,
                            settings::IDENTITY_VAR
                        ),
                        want,
                    ));
                };
                let keys = Identities::load(&value.0).map_err(|why| refused(why, want.clone()))?;
                decryptor
                    .decrypt(keys.identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
                    .map_err(|err| match err {
                        age::DecryptError::NoMatchingKeys => refused(
                            format!(
                                "{} ({}: {}) is not a recipient of plan bundle `{}`, encrypted to {to}",
                                settings::IDENTITY_VAR,
                                keys.source,
                                keys.public.join(", "),
                                self.label
                            ),
                            want.clone(),
                        ),
                        err => damaged(err),
                    })?
            }
        };
        let mut clear = Vec::new();
        let mut reader = reader;
        reader.read_to_end(&mut clear).map_err(|err| {
            refused(
                format!("`{}` does not decrypt: {err}", file.display()),
                "the bundle was changed or damaged after it was written; plan again with `tfenv plan <env> --out DIR --encrypt`".to_string(),
            )
        })?;
        Ok(clear)
    }

    pub fn reference(&self, project: &Project) -> BundleRef {
        BundleRef {
            dir: match self.published {
                true => self.label.clone(),
                false => project.show(&self.dir),
            },
            sha256: self.sha256.clone(),
            encrypted: self.is_encrypted(),
            path: self.dir.clone(),
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
    sealer: Option<&Sealer>,
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
    meta.sha256 = Checksums {
        plan: sha256(&plan_bytes),
        plan_json: sha256(plan_json),
    };
    match sealer {
        None => {
            files::write_atomic(&temp.path().join(PLAN), &plan_bytes, files::PRIVATE_FILE)?;
            files::write_atomic(&temp.path().join(PLAN_JSON), plan_json, files::PRIVATE_FILE)?;
            meta.format = FORMAT;
            meta.encryption = None;
        }
        Some(sealer) => {
            let plan_age = sealer.encrypt(&plan_bytes)?;
            let json_age = sealer.encrypt(plan_json)?;
            files::write_atomic(&temp.path().join(PLAN_AGE), &plan_age, files::PRIVATE_FILE)?;
            files::write_atomic(
                &temp.path().join(PLAN_JSON_AGE),
                &json_age,
                files::PRIVATE_FILE,
            )?;
            meta.format = ENCRYPTED_FORMAT;
            meta.encryption = Some(Encryption {
                to: sealer.to(),
                recipients: sealer.recipients(),
                sha256: EncryptedChecksums {
                    plan: sha256(&plan_age),
                    plan_json: sha256(&json_age),
                },
            });
        }
    }
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

/// Removes the bundle in `dir` (checked by `check_replaceable`: nothing but a bundle's
/// files) before a new plan into it, so a plan that fails or is refused leaves no older
/// bundle behind for a CI step to ship as this run's. `true` when there was one.
pub fn remove_old(dir: &Path) -> anyhow::Result<bool> {
    check_replaceable(dir)?;
    if !dir.join(META).is_file() {
        return Ok(false);
    }
    std::fs::remove_dir_all(dir).map_err(|err| {
        anyhow::anyhow!("removing the old plan bundle `{}`: {err}", dir.display())
    })?;
    Ok(true)
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
    let bundle_files = [PLAN, PLAN_JSON, PLAN_AGE, PLAN_JSON_AGE, META];
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

/// How `plan --encrypt` encrypts: the recipients' keys parsed, or the passphrase.
pub enum Sealer {
    Recipients(Vec<age::x25519::Recipient>),
    Passphrase(SecretString),
}

impl Sealer {
    /// Checked before anything is planned: a key that is not an age public key is a
    /// usage error naming it.
    pub fn new(sealing: &Sealing) -> anyhow::Result<Sealer> {
        Ok(match sealing {
            Sealing::Passphrase(passphrase) => {
                Sealer::Passphrase(SecretString::from(passphrase.0.clone()))
            }
            Sealing::Recipients(keys) => Sealer::Recipients(
                keys.iter()
                    .map(|key| {
                        key.parse::<age::x25519::Recipient>().map_err(|why| {
                            TfenvError::usage(
                                format!("recipient `{key}` is not an age public key ({why})"),
                                Some(format!(
                                    "give age X25519 public keys (`age1…`, from `age-keygen -y KEYFILE`) with --recipient or {}",
                                    settings::RECIPIENTS_VAR
                                )),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    fn to(&self) -> EncryptedTo {
        match self {
            Sealer::Recipients(_) => EncryptedTo::Recipients,
            Sealer::Passphrase(_) => EncryptedTo::Passphrase,
        }
    }

    fn recipients(&self) -> Vec<String> {
        match self {
            Sealer::Recipients(keys) => keys.iter().map(ToString::to_string).collect(),
            Sealer::Passphrase(_) => Vec::new(),
        }
    }

    /// `clear` encrypted in memory, in the age format (binary).
    pub fn encrypt(&self, clear: &[u8]) -> anyhow::Result<Vec<u8>> {
        let encryptor = match self {
            Sealer::Recipients(keys) => {
                age::Encryptor::with_recipients(keys.iter().map(|k| k as &dyn age::Recipient))
                    .map_err(|err| anyhow::anyhow!("encrypting the bundle: {err}"))?
            }
            Sealer::Passphrase(passphrase) => {
                age::Encryptor::with_user_passphrase(passphrase.clone())
            }
        };
        let mut out = Vec::new();
        let mut writer = encryptor.wrap_output(&mut out)?;
        writer.write_all(clear)?;
        writer.finish()?;
        Ok(out)
    }
}

/// The identities of `TFENV_BUNDLE_IDENTITY`: the key itself (`AGE-SECRET-KEY-1…`) or
/// the path of an age identity file (`age-keygen`'s output: keys, `#` comments).
struct Identities {
    identities: Vec<Box<dyn age::Identity + Send + Sync>>,
    /// Their public keys, to say whose they are.
    public: Vec<String>,
    /// Where they came from, said in errors (never the key).
    source: String,
}

impl Identities {
    fn load(value: &str) -> Result<Identities, String> {
        let value = value.trim();
        let (bytes, source) = match value.starts_with("AGE-SECRET-KEY-") {
            true => (value.as_bytes().to_vec(), "the key it holds".to_string()),
            false => {
                let path = Path::new(value);
                match files::read_regular(path) {
                    Ok(Some(bytes)) => (bytes, format!("`{value}`")),
                    Ok(None) => {
                        return Err(format!(
                            "{} `{value}`: no such file (it is neither an age identity file nor an AGE-SECRET-KEY-1… key)",
                            settings::IDENTITY_VAR
                        ));
                    }
                    Err(err) => return Err(format!("{}: {err:#}", settings::IDENTITY_VAR)),
                }
            }
        };
        let file = age::IdentityFile::from_buffer(bytes.as_slice())
            .map_err(|err| format!("{} ({source}): {err}", settings::IDENTITY_VAR))?;
        let mut public = Vec::new();
        file.write_recipients_file(&mut public).map_err(|err| {
            format!(
                "{} ({source}) holds no age identity: {err}",
                settings::IDENTITY_VAR
            )
        })?;
        let public = String::from_utf8_lossy(&public)
            .lines()
            .map(str::to_string)
            .collect();
        let identities = file
            .into_identities()
            .map_err(|err| format!("{} ({source}): {err}", settings::IDENTITY_VAR))?;
        Ok(Identities {
            identities,
            public,
            source,
        })
    }
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
            encryption: None,
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
        let sum = write(&dir, &plan, br#"{"resource_changes":[]}"#, meta(), None).unwrap();
        assert_eq!(mode(&dir), 0o700);
        for name in [PLAN, PLAN_JSON, META] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
        let bundle = Bundle::open(&dir, "dev").unwrap();
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
        write(&dir, &plan, b"{}", meta(), None).unwrap();
        std::fs::write(&plan, b"two").unwrap();
        write(&dir, &plan, b"{}", meta(), None).unwrap();
        assert_eq!(std::fs::read(dir.join(PLAN)).unwrap(), b"two");

        let other = tmp.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("notes.txt"), "x").unwrap();
        let err = write(&other, &plan, b"{}", meta(), None).unwrap_err();
        assert!(
            format!("{err:#}").contains("not empty and not a plan bundle"),
            "{err:#}"
        );
        assert!(other.join("notes.txt").is_file());
        assert!(!other.join(META).exists());
    }

    /// A bundle of `plan`/`json` encrypted with `sealing`, in `tmp/b`.
    fn sealed(tmp: &Path, sealing: Sealing, json: &[u8]) -> PathBuf {
        let plan = tmp.join("p");
        std::fs::write(&plan, b"plan bytes: s3cr3t-token").unwrap();
        let dir = tmp.join("b");
        let sealer = Sealer::new(&sealing).unwrap();
        write(&dir, &plan, json, meta(), Some(&sealer)).unwrap();
        dir
    }

    fn keys(identity: Option<String>, passphrase: Option<&str>) -> BundleKeys {
        BundleKeys {
            identity: identity.map(settings::Secret),
            passphrase: passphrase.map(|p| settings::Secret(p.to_string())),
        }
    }

    fn refusal(err: anyhow::Error) -> String {
        assert_eq!(
            crate::error::exit_for(&err),
            crate::exit::Exit::Refused,
            "{err:#}"
        );
        format!("{err:#}")
    }

    #[test]
    fn an_encrypted_bundle_holds_no_clear_plan_and_decrypts_with_a_recipients_key() {
        let tmp = tempfile::tempdir().unwrap();
        let key = age::x25519::Identity::generate();
        let public = key.to_public().to_string();
        let json = br#"{"variables":{"api_token":{"value":"s3cr3t-token"}},"resource_changes":[]}"#;
        let dir = sealed(tmp.path(), Sealing::Recipients(vec![public.clone()]), json);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [META, PLAN_JSON_AGE, PLAN_AGE]);
        for name in &names {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
            let bytes = std::fs::read(dir.join(name)).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains("s3cr3t"),
                "{name} holds the secret"
            );
        }
        let bundle = Bundle::open(&dir, "dev").unwrap();
        assert_eq!(bundle.meta.format, ENCRYPTED_FORMAT);
        let encryption = bundle.meta.encryption.clone().unwrap();
        assert_eq!(encryption.to, EncryptedTo::Recipients);
        assert_eq!(encryption.recipients, [public]);
        assert_eq!(bundle.meta.sha256.plan_json, sha256(json));

        // The key itself, or a file holding it (age-keygen's format, with comments).
        let secret = age::secrecy::ExposeSecret::expose_secret(&key.to_string()).to_string();
        let verified = bundle
            .clone()
            .with_keys(keys(Some(secret.clone()), None))
            .verify_files()
            .unwrap();
        assert_eq!(verified.plan, b"plan bytes: s3cr3t-token");
        let file = tmp.path().join("key.txt");
        std::fs::write(
            &file,
            format!("# created: now\n# public key: x\n{secret}\n"),
        )
        .unwrap();
        let with_file = bundle.with_keys(keys(Some(file.display().to_string()), None));
        assert!(with_file.verify_files().is_ok());
    }

    #[test]
    fn a_missing_or_wrong_key_is_refused_naming_what_was_tried_and_what_to_set() {
        let tmp = tempfile::tempdir().unwrap();
        let key = age::x25519::Identity::generate();
        let public = key.to_public().to_string();
        let dir = sealed(tmp.path(), Sealing::Recipients(vec![public.clone()]), b"{}");
        let bundle = Bundle::open(&dir, "dev").unwrap();

        let text = refusal(bundle.clone().verify_files().err().unwrap());
        assert!(text.contains("TFENV_BUNDLE_IDENTITY is not set"), "{text}");
        assert!(text.contains(&public), "{text}");

        let other = age::x25519::Identity::generate();
        let secret = age::secrecy::ExposeSecret::expose_secret(&other.to_string()).to_string();
        let err = bundle
            .clone()
            .with_keys(keys(Some(secret.clone()), None))
            .verify_files()
            .err()
            .unwrap();
        let text = refusal(err);
        assert!(text.contains("is not a recipient"), "{text}");
        assert!(text.contains(&other.to_public().to_string()), "{text}");
        assert!(text.contains(&public), "{text}");
        assert!(!text.contains(&secret), "the key is never shown: {text}");

        let missing = tmp.path().join("nope.txt").display().to_string();
        let err = bundle
            .with_keys(keys(Some(missing.clone()), None))
            .verify_files()
            .err()
            .unwrap();
        let text = refusal(err);
        assert!(
            text.contains(&format!("`{missing}`: no such file")),
            "{text}"
        );
    }

    #[test]
    fn a_passphrase_bundle_decrypts_with_the_passphrase_only() {
        let tmp = tempfile::tempdir().unwrap();
        let pass = settings::Secret("correct horse".to_string());
        let dir = sealed(tmp.path(), Sealing::Passphrase(pass), b"{}");
        let bundle = Bundle::open(&dir, "dev").unwrap();
        let encryption = bundle.meta.encryption.clone().unwrap();
        assert_eq!(encryption.to, EncryptedTo::Passphrase);
        assert!(encryption.recipients.is_empty());
        let meta = std::fs::read_to_string(dir.join(META)).unwrap();
        assert!(!meta.contains("correct horse"), "{meta}");
        let text = refusal(bundle.clone().verify_files().err().unwrap());
        assert!(
            text.contains("TFENV_BUNDLE_PASSPHRASE is not set"),
            "{text}"
        );
        let wrong = bundle.clone().with_keys(keys(None, Some("wrong")));
        let text = refusal(wrong.verify_files().err().unwrap());
        assert!(text.contains("a wrong passphrase"), "{text}");
        let right = bundle.with_keys(keys(None, Some("correct horse")));
        assert!(!right.verify_files().unwrap().plan.is_empty());
    }

    #[test]
    fn a_changed_or_swapped_encrypted_file_is_refused_before_decrypting() {
        let tmp = tempfile::tempdir().unwrap();
        let key = age::x25519::Identity::generate();
        let dir = sealed(
            tmp.path(),
            Sealing::Recipients(vec![key.to_public().to_string()]),
            b"{}",
        );
        let file = dir.join(PLAN_AGE);
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        // No key given: the checksum refuses it first.
        let text = refusal(
            Bundle::open(&dir, "dev")
                .unwrap()
                .verify_files()
                .err()
                .unwrap(),
        );
        assert!(
            text.contains("`sha256 of terraform.plan.age` failed"),
            "{text}"
        );
        // With bundle.json's checksum changed too, age itself refuses it.
        let meta = std::fs::read_to_string(dir.join(META)).unwrap();
        let old = Bundle::open(&dir, "dev")
            .unwrap()
            .meta
            .encryption
            .unwrap()
            .sha256
            .plan;
        std::fs::write(dir.join(META), meta.replace(&old, &sha256(&bytes))).unwrap();
        let secret = age::secrecy::ExposeSecret::expose_secret(&key.to_string()).to_string();
        let err = Bundle::open(&dir, "dev")
            .unwrap()
            .with_keys(keys(Some(secret), None))
            .verify_files()
            .err()
            .unwrap();
        let text = refusal(err);
        assert!(text.contains("does not decrypt"), "{text}");
    }

    #[test]
    fn a_recipient_that_is_not_an_age_key_is_a_usage_error() {
        let err = Sealer::new(&Sealing::Recipients(vec!["ssh-ed25519 AAAA".to_string()]))
            .err()
            .unwrap();
        assert_eq!(crate::error::exit_for(&err), crate::exit::Exit::Usage);
        assert!(
            format!("{err:#}").contains("recipient `ssh-ed25519 AAAA` is not an age public key"),
            "{err:#}"
        );
    }

    #[test]
    fn a_changed_byte_fails_the_checksum_naming_both_values() {
        let tmp = tempfile::tempdir().unwrap();
        let plan = tmp.path().join("p");
        std::fs::write(&plan, b"plan bytes").unwrap();
        let dir = tmp.path().join("b");
        write(&dir, &plan, b"{}", meta(), None).unwrap();
        std::fs::write(dir.join(PLAN), b"plan bytez").unwrap();
        let err = Bundle::open(&dir, "dev")
            .unwrap()
            .verify_files()
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("`sha256 of terraform.plan` failed: expected `"),
            "{text}"
        );
        assert!(text.contains(&sha256(b"plan bytez")), "{text}");
        // The hint names the bundle's environment, not a placeholder.
        assert_eq!(
            crate::error::hint_for(&err),
            Some(
                format!(
                    "the bundle was changed or damaged after it was written; plan again with `tfenv plan {} --out DIR`",
                    meta().environment
                )
                .as_str()
            )
        );
    }
}
