//! What the azurerm and gcs arms of the store (`az`, `gcloud`) share: one CLI call with
//! a deadline, files handed to a CLI to upload or download into (private, and landed in
//! place only whole), the errors a failed call becomes, and the scalars their JSON
//! prints (sizes as numbers or strings, times in RFC 3339 or `+0000` form).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::store::Body;
use crate::error::TfenvError;
use crate::files::{PRIVATE_DIR, PRIVATE_FILE};
use crate::process::{Finished, Invocation, RunOptions, Runner};

/// Runs one CLI call with a deadline: when it passes, the call is dropped (the runner
/// kills the child's process group) and the error is `Unreachable`, naming `what`.
pub(super) async fn run(
    runner: &dyn Runner,
    inv: &Invocation,
    timeout: Duration,
    what: &str,
) -> anyhow::Result<Finished> {
    super::within(
        timeout,
        || what.to_string(),
        runner.run(inv, RunOptions::default()),
    )
    .await
}

/// What a refused call of a cloud CLI is reported with.
pub(super) struct Refused {
    /// Whose credentials the CLI used, for people (never a secret).
    pub identity: String,
    /// What to fix when the credentials are missing, expired or refused.
    pub credential_fix: &'static str,
    /// The permission the call needs, for when the credentials are fine but may not
    /// make it (`` `storage.objects.create` on the bucket `b` ``).
    pub permission: String,
}

/// A failed call as an error: `what` (the call and the object) and the CLI's first error
/// line. Missing or refused credentials are `TfenvError::Auth` with the credential fix
/// as hint; a call the credentials may not make is `TfenvError::Permission`, naming the
/// identity, with the permission to grant as hint.
pub(super) fn failure(what: &str, done: &Finished, refused: &Refused) -> anyhow::Error {
    failure_in(what, done, refused, "docs/team.md (Permissions)")
}

/// `failure`, with the permission hint naming `docs` as where the permissions are listed.
pub(super) fn failure_in(
    what: &str,
    done: &Finished,
    refused: &Refused,
    docs: &str,
) -> anyhow::Error {
    let stderr = done.stderr_text();
    // az and gcloud print their warnings first (no credentials given, a new version
    // available): the line that says what failed is the first `ERROR:` one.
    let line = match stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("ERROR"))
    {
        Some(error) => error.to_string(),
        None => super::first_error_line(&stderr),
    };
    let line = if line == "no error output" {
        format!("it {} with no error output", done.describe())
    } else {
        line
    };
    match refusal(&stderr) {
        Some(Refusal::Credentials) => TfenvError::Auth {
            message: format!("{what} failed: {line}"),
            hint: Some(refused.credential_fix.to_string()),
        }
        .into(),
        Some(Refusal::Permission) => TfenvError::Permission {
            message: format!(
                "permission denied: {what}: {line}; tfenv used {}",
                refused.identity
            ),
            hint: Some(format!(
                "the credentials were accepted but may not do this: grant {} to that identity; the permissions tfenv needs are in {docs}",
                refused.permission
            )),
        }
        .into(),
        None => anyhow::anyhow!("{what} failed: {line}"),
    }
}

/// What a refusal printed by az or gcloud is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// No credentials, or ones the service does not accept (expired, invalid).
    Credentials,
    /// Credentials the service accepted, without the permission for the call.
    Permission,
}

/// What az and gcloud print when there are no credentials or the service refuses them,
/// and when it accepts them but denies the call. Credentials are checked first: a CLI
/// that asks to log in again says nothing about permissions.
fn refusal(stderr: &str) -> Option<Refusal> {
    const CREDENTIALS: [&str; 11] = [
        "AuthenticationFailed",
        "InvalidAuthenticationInfo",
        "NoAuthenticationInformation",
        "az login",
        "gcloud auth login",
        "HTTPError 401",
        "401 Unauthorized",
        "Reauthentication",
        "invalid_grant",
        "does not have any valid credentials",
        "You do not currently have an active account",
    ];
    const PERMISSION: [&str; 8] = [
        "AuthorizationPermissionMismatch",
        "AuthorizationFailure",
        // Azure Resource Manager's refusal (`az group show`, `az storage account …`).
        "AuthorizationFailed",
        "AuthorizationResourceTypeMismatch",
        "HTTPError 403",
        "403 Forbidden",
        "does not have storage.",
        "AccessDenied",
    ];
    if CREDENTIALS.iter().any(|sign| stderr.contains(sign)) {
        Some(Refusal::Credentials)
    } else if PERMISSION.iter().any(|sign| stderr.contains(sign)) {
        Some(Refusal::Permission)
    } else {
        None
    }
}

/// The file a CLI uploads `body` from: the given file, or the bytes written to a private
/// temporary file (kept until the returned guard drops).
pub(super) fn upload_source(
    body: Body<'_>,
) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match body {
        Body::File(path) => Ok((path.to_path_buf(), None)),
        Body::Bytes(bytes) => {
            let dir = private_dir(&std::env::temp_dir())?;
            let file = dir.path().join("upload");
            write_private(&file, bytes)?;
            Ok((file, Some(dir)))
        }
    }
}

/// A private folder beside a download's destination for the CLI to write into: the file
/// reaches its destination (0600) only once the CLI has written all of it.
pub(super) struct Landing {
    dir: tempfile::TempDir,
}

impl Landing {
    /// A landing for `dest` (in its folder, so the final rename stays on one disk).
    pub(super) fn beside(dest: &Path) -> anyhow::Result<Landing> {
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(Landing {
            dir: private_dir(&parent)?,
        })
    }

    /// A landing for a read into memory.
    pub(super) fn temporary() -> anyhow::Result<Landing> {
        Ok(Landing {
            dir: private_dir(&std::env::temp_dir())?,
        })
    }

    /// The file the CLI writes.
    pub(super) fn file(&self) -> PathBuf {
        self.dir.path().join("download")
    }

    /// Names the downloaded file `dest`, mode 0600, synced, never replacing a file
    /// already there (as the s3 arm's downloads).
    pub(super) fn land(self, dest: &Path) -> anyhow::Result<()> {
        let file = self.file();
        let written = fs::File::open(&file)
            .with_context(|| format!("the download of `{}` left no file", dest.display()))?;
        written
            .set_permissions(fs::Permissions::from_mode(PRIVATE_FILE))
            .and_then(|()| written.sync_all())
            .with_context(|| format!("writing `{}`", dest.display()))?;
        tempfile::TempPath::try_from_path(file)
            .with_context(|| format!("writing `{}`", dest.display()))?
            .persist_noclobber(dest)
            .map_err(|e| e.error)
            .with_context(|| format!("creating `{}`", dest.display()))?;
        if let Some(dir) = dest.parent().and_then(|d| fs::File::open(d).ok()) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// The downloaded bytes.
    pub(super) fn read(self) -> anyhow::Result<Vec<u8>> {
        let file = self.file();
        fs::read(&file).context("the CLI's download left no file")
    }
}

fn private_dir(parent: &Path) -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(".tfenv-transfer-")
        .permissions(fs::Permissions::from_mode(PRIVATE_DIR))
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary folder in `{}`", parent.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE)
        .open(path)
        .with_context(|| format!("creating `{}`", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing `{}`", path.display()))
}

/// The JSON a CLI printed, or an error naming the call.
pub(super) fn json(what: &str, stdout: &[u8]) -> anyhow::Result<Value> {
    serde_json::from_slice(stdout)
        .map_err(|e| anyhow::anyhow!("{what} printed something that is not JSON ({e})"))
}

/// The entries of a JSON array a listing printed, or an error naming the call.
pub(super) fn entries<'v>(what: &str, listing: &'v Value) -> anyhow::Result<&'v [Value]> {
    match listing {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(&[]),
        _ => anyhow::bail!("{what} printed JSON that is not a list"),
    }
}

/// A size or a number: `1834` or `"1834"`.
pub(super) fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An ID printed as a string or a number (a GCS generation).
pub(super) fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A time as az (`2026-01-12T09:30:00+00:00`) or gcloud (`2026-01-12T09:30:00+0000`,
/// or RFC 3339 with `--raw`) print it.
pub(super) fn time(value: Option<&Value>) -> Option<DateTime<Utc>> {
    let text = value?.as_str()?.trim();
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_ids_and_times_are_read_in_every_form_the_clis_print() {
        assert_eq!(number(Some(&json!(1834))), Some(1834));
        assert_eq!(number(Some(&json!("1834"))), Some(1834));
        assert_eq!(number(Some(&json!(-1))), None);
        assert_eq!(number(Some(&json!("big"))), None);
        assert_eq!(number(None), None);
        assert_eq!(text(Some(&json!(17))).as_deref(), Some("17"));
        assert_eq!(text(Some(&json!("17"))).as_deref(), Some("17"));
        assert_eq!(text(Some(&json!(""))), None);
        assert_eq!(text(Some(&json!(null))), None);
        let expected = "2026-01-12T09:30:00Z".parse::<DateTime<Utc>>().unwrap();
        for form in [
            "2026-01-12T09:30:00+00:00",
            "2026-01-12T09:30:00+0000",
            "2026-01-12T09:30:00.000Z",
            "2026-01-12T10:30:00+0100",
        ] {
            assert_eq!(time(Some(&json!(form))), Some(expected), "{form}");
        }
        assert_eq!(time(Some(&json!("yesterday"))), None);
        assert_eq!(time(Some(&json!(3))), None);
    }

    fn refused() -> Refused {
        Refused {
            identity: "the account key (`access_key` in the backend config)".to_string(),
            credential_fix: "fix it",
            permission: "`blobs/write` on the container `c`".to_string(),
        }
    }

    #[test]
    fn a_denied_call_is_a_permission_error_naming_the_identity_and_the_permission() {
        let denied = Finished {
            code: Some(1),
            stderr: b"\nERROR: This request is not authorized to perform this operation using this permission.\nErrorCode:AuthorizationPermissionMismatch\n".to_vec(),
            ..Finished::default()
        };
        let err = failure("`az storage blob list` for `x`", &denied, &refused());
        assert!(super::super::is_permission(&err), "{err:#}");
        assert!(!super::super::is_auth(&err), "{err:#}");
        assert_eq!(
            err.to_string(),
            "permission denied: `az storage blob list` for `x`: ERROR: This request is not authorized to perform this operation using this permission.; tfenv used the account key (`access_key` in the backend config)"
        );
        let hint = crate::error::hint_for(&err).unwrap();
        assert!(
            hint.contains("grant `blobs/write` on the container `c`")
                && hint.contains("docs/team.md")
                && !hint.contains("fix it"),
            "{hint}"
        );
        // gcloud's 403, and az's firewall / SAS refusal: permissions too.
        for stderr in [
            "ERROR: (gcloud.storage.cp) HTTPError 403: ci@p.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object. Permission 'storage.objects.create' denied on resource (or it may not exist).\n",
            "ERROR: This request is not authorized to perform this operation.\nErrorCode:AuthorizationFailure\n",
        ] {
            let done = Finished {
                code: Some(1),
                stderr: stderr.as_bytes().to_vec(),
                ..Finished::default()
            };
            let err = failure("a call", &done, &refused());
            assert!(super::super::is_permission(&err), "{stderr}: {err:#}");
        }
    }

    #[test]
    fn missing_or_refused_credentials_are_an_auth_error_with_the_credential_fix() {
        for stderr in [
            "ERROR: Server failed to authenticate the request.\nErrorCode:AuthenticationFailed\n",
            "ERROR: (gcloud.storage.cat) There was a problem refreshing your current auth tokens: Reauthentication required.\n",
            "ERROR: (gcloud.storage.ls) You do not currently have an active account selected.\nPlease run:\n\n  $ gcloud auth login\n",
        ] {
            let done = Finished {
                code: Some(1),
                stderr: stderr.as_bytes().to_vec(),
                ..Finished::default()
            };
            let err = failure("a call", &done, &refused());
            assert!(super::super::is_auth(&err), "{stderr}: {err:#}");
            assert!(!super::super::is_permission(&err), "{stderr}: {err:#}");
            assert_eq!(crate::error::hint_for(&err), Some("fix it"));
        }
    }

    #[test]
    fn anything_else_names_the_first_error_line() {
        let warned = Finished {
            code: Some(1),
            stderr: b"WARNING: There are no credentials provided in your command and environment, we will query for account key for your storage account.\nERROR: Please run 'az login' to setup account.\n".to_vec(),
            ..Finished::default()
        };
        let err = failure("`az storage blob download` of `x`", &warned, &refused());
        assert!(super::super::is_auth(&err), "{err:#}");
        assert_eq!(
            err.to_string(),
            "`az storage blob download` of `x` failed: ERROR: Please run 'az login' to setup account."
        );
        let silent = Finished {
            code: Some(3),
            ..Finished::default()
        };
        let err = failure("`gcloud storage cat` for `gs://b/k`", &silent, &refused());
        assert!(!super::super::is_auth(&err));
        assert_eq!(
            err.to_string(),
            "`gcloud storage cat` for `gs://b/k` failed: it exited with code 3 with no error output"
        );
    }

    #[test]
    fn a_landed_download_is_private_and_whole() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("state.json");
        let landing = Landing::beside(&dest).unwrap();
        fs::write(landing.file(), b"{}").unwrap();
        fs::set_permissions(landing.file(), fs::Permissions::from_mode(0o644)).unwrap();
        landing.land(&dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"{}");
        let mode = fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Nothing else is left beside it.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // Never over a file already there.
        let again = Landing::beside(&dest).unwrap();
        fs::write(again.file(), b"other").unwrap();
        assert!(again.land(&dest).is_err());
        assert_eq!(fs::read(&dest).unwrap(), b"{}");
        // A CLI that wrote nothing: an error, and no destination file.
        let missing = dir.path().join("other.json");
        let err = Landing::beside(&missing)
            .unwrap()
            .land(&missing)
            .unwrap_err();
        assert!(format!("{err:#}").contains("left no file"), "{err:#}");
        assert!(!missing.exists());
    }

    #[test]
    fn bytes_to_upload_go_through_a_private_file() {
        let (file, guard) = upload_source(Body::Bytes(b"record")).unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"record");
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(guard);
        assert!(!file.exists());
        let given = Path::new("/some/backup.tfstate");
        let (file, guard) = upload_source(Body::File(given)).unwrap();
        assert_eq!((file.as_path(), guard.is_none()), (given, true));
    }
}

/// For the unit tests of the az and gcloud arms: the scripted runner, plus the files
/// their download calls write (the scripted runner writes none).
#[cfg(test)]
pub(super) mod testing {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use crate::process::scripted::ScriptedRunner;
    use crate::process::{Finished, Invocation, RunOptions, Runner};

    /// One call: its arguments (lossy UTF-8) and the environment it added.
    pub(in crate::backend) type Call = (Vec<String>, Vec<(String, String)>);

    pub(in crate::backend) struct Cli {
        pub script: ScriptedRunner,
        writes: Mutex<VecDeque<Vec<u8>>>,
    }

    impl Cli {
        pub fn new(script: ScriptedRunner) -> Arc<Cli> {
            Arc::new(Cli {
                script,
                writes: Mutex::default(),
            })
        }

        /// The next successful download call writes `bytes` into its file.
        pub fn writing(self: &Arc<Cli>, bytes: &[u8]) -> Arc<Cli> {
            self.writes.lock().unwrap().push_back(bytes.to_vec());
            self.clone()
        }

        /// The calls, each as its arguments (lossy UTF-8) and added environment.
        pub fn calls(&self) -> Vec<Call> {
            self.script
                .calls()
                .iter()
                .map(|inv| {
                    (
                        inv.args
                            .iter()
                            .map(|a| a.to_string_lossy().into_owned())
                            .collect(),
                        inv.env
                            .iter()
                            .map(|(k, v)| (k.clone(), v.to_string_lossy().into_owned()))
                            .collect(),
                    )
                })
                .collect()
        }
    }

    /// The file a download call writes: az's `--file` of `download`, gcloud's last
    /// argument of a `cp` from `gs://`.
    fn download_file(args: &[String]) -> Option<String> {
        if args.get(2).map(String::as_str) == Some("download") {
            let at = args.iter().position(|a| a == "--file")?;
            return args.get(at + 1).cloned();
        }
        if args.get(1).map(String::as_str) == Some("cp") && args[2].starts_with("gs://") {
            return args.last().cloned();
        }
        None
    }

    #[async_trait::async_trait]
    impl Runner for Cli {
        async fn run(&self, inv: &Invocation, options: RunOptions) -> anyhow::Result<Finished> {
            let done = self.script.run(inv, options).await?;
            let args: Vec<String> = inv
                .args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            if done.success()
                && let Some(file) = download_file(&args)
                && let Some(bytes) = self.writes.lock().unwrap().pop_front()
            {
                std::fs::write(file, bytes)?;
            }
            Ok(done)
        }
    }
}
