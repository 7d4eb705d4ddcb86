//! gcs: the bucket (versioning, uniform bucket-level access, public access prevention
//! `enforced`), through `gcloud` with the backend's credentials and endpoint, as the lock
//! reader and the store make their calls.
//!
//! What counts as never set (**completed** on a plain run) and what as set otherwise
//! (**fixed** only with `--fix`), by the rule of the azurerm arm: a setting GCS reports as
//! absent, or at the value it gives a bucket nobody set it on, was never set. Uniform
//! bucket-level access `false` and public access prevention `inherited` (or
//! `unspecified`) are what GCS reports for a bucket created without them, so they are
//! completed; versioning is absent until someone sets it, so `false` means it was turned
//! off: fixed.

use std::path::PathBuf;

use serde_json::Value;

use super::{Op as AnyOp, Options, Step, StepKind, Survey};
use crate::backend::gcs::{AUTH_FIX, gcloud, gcloud_binary, identity, is_missing};
use crate::backend::{Backend, cloud_cli, is_permission};
use crate::error::TfenvError;
use crate::process::Finished;

/// Where the permissions bootstrap needs are listed.
const DOCS: &str = "docs/bootstrap.md (Permissions)";

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Op {
    /// In `--location`, with uniform bucket-level access and public access prevention.
    CreateBucket,
    Versioning,
    UniformAccess,
    PublicAccessPrevention,
}

fn step(kind: StepKind, change: impl Into<String>, op: Op) -> Step {
    Step::new(kind, change, AnyOp::Gcs(op))
}

pub(super) async fn survey_bucket(backend: &Backend, options: &Options) -> anyhow::Result<Survey> {
    // gcloud takes a key file only: with the key itself in the config, bootstrap would
    // create as gcloud's own account, not as the identity terraform will use.
    if backend
        .setting("credentials")
        .is_some_and(|c| crate::backend::gcs::inline_key(&c))
    {
        return Err(TfenvError::config(
            "the backend config's `credentials` holds the key itself, not the path of a key file, and gcloud takes only a file: bootstrap would create the bucket as gcloud's own account, not as the identity terraform uses",
            Some("put the key in a file (readable only by you) and name that file in `credentials`".to_string()),
        )
        .into());
    }
    Gcloud::new(backend, options)?.survey_bucket().await
}

pub(super) async fn apply(backend: &Backend, op: &Op, options: &Options) -> anyhow::Result<()> {
    Gcloud::new(backend, options)?.apply(op).await
}

/// One backend's bucket, and the `gcloud` that reaches it.
struct Gcloud<'a> {
    backend: &'a Backend,
    options: &'a Options,
    bin: PathBuf,
    bucket: String,
    /// `gs://<bucket>`.
    url: String,
}

impl<'a> Gcloud<'a> {
    fn new(backend: &'a Backend, options: &'a Options) -> anyhow::Result<Gcloud<'a>> {
        Ok(Gcloud::with_bin(backend, options, gcloud_binary()?))
    }

    fn with_bin(backend: &'a Backend, options: &'a Options, bin: PathBuf) -> Gcloud<'a> {
        let bucket = backend.setting("bucket").unwrap_or_default();
        Gcloud {
            url: format!("gs://{bucket}"),
            bucket,
            backend,
            options,
            bin,
        }
    }

    async fn run(&self, args: &[&str], what: &str) -> anyhow::Result<Finished> {
        let inv = gcloud(self.backend, &self.bin, args);
        cloud_cli::run(&*self.options.runner, &inv, self.options.timeout, what).await
    }

    /// What a refusal of a call needing `permission` on `on` says.
    fn refused(&self, permission: &str, on: &str) -> cloud_cli::Refused {
        cloud_cli::Refused {
            identity: identity(self.backend),
            credential_fix: AUTH_FIX,
            permission: format!("`{permission}` on {on}"),
        }
    }

    fn on_bucket(&self) -> String {
        format!("the bucket `{}`", self.bucket)
    }

    async fn survey_bucket(&self) -> anyhow::Result<Survey> {
        let url = &self.url;
        let what = format!("`gcloud storage buckets describe {url}`");
        let done = self
            .run(
                &["storage", "buckets", "describe", url, "--format=json"],
                &what,
            )
            .await?;
        if done.success() {
            let shown = cloud_cli::json(&what, &done.stdout)?;
            return Ok(self.read_bucket(&shown));
        }
        if bucket_missing(&done.stderr_text()) {
            return self.plan_bucket();
        }
        let err = cloud_cli::failure_in(
            &what,
            &done,
            &self.refused("storage.buckets.get", &self.on_bucket()),
            DOCS,
        );
        if !is_permission(&err) {
            return Err(err);
        }
        // Bucket names are global: a 403 is most often someone else's bucket.
        Err(TfenvError::Permission {
            message: format!(
                "the GCS bucket `{url}` exists, but these credentials may not use it (403): it belongs to another project, or they lack `storage.buckets.get` on it; tfenv used {}",
                identity(self.backend)
            ),
            hint: Some(
                "bucket names are global across all of Google Cloud: if the bucket is not yours, choose another `bucket` name in the backend config; if it is, grant `storage.buckets.get` on it to that identity".to_string(),
            ),
        }
        .into())
    }

    /// A bucket that does not exist: created in `--location`, which it needs.
    fn plan_bucket(&self) -> anyhow::Result<Survey> {
        let Some(location) = self.location()? else {
            return Err(TfenvError::config(
                format!(
                    "the GCS bucket `{}` does not exist; creating it needs --location",
                    self.url
                ),
                Some("pass --location (e.g. europe-west1, EU)".to_string()),
            )
            .into());
        };
        Ok(Survey {
            exists: false,
            found: Vec::new(),
            steps: vec![
                step(
                    StepKind::Create,
                    format!(
                        "create it in `{location}` with uniform bucket-level access and public access prevention enforced"
                    ),
                    Op::CreateBucket,
                ),
                step(StepKind::Create, "turn on versioning", Op::Versioning),
            ],
            notes: Vec::new(),
        })
    }

    /// An existing bucket's settings, as `describe` prints them (or the JSON API's keys).
    fn read_bucket(&self, shown: &Value) -> Survey {
        let field = |standard: &str, api: &str| {
            shown
                .get(standard)
                .filter(|v| !v.is_null())
                .or_else(|| shown.pointer(api).filter(|v| !v.is_null()))
        };
        let mut found = Vec::new();
        let mut steps = Vec::new();
        if let Some(location) = field("location", "/location").and_then(Value::as_str) {
            found.push(format!("in `{location}`"));
        }
        match field("versioning_enabled", "/versioning/enabled").and_then(Value::as_bool) {
            Some(true) => found.push("versioning enabled".into()),
            Some(false) => steps.push(
                step(StepKind::Fix, "turn versioning back on", Op::Versioning)
                    .found("versioning turned off"),
            ),
            None => steps.push(step(
                StepKind::Complete,
                "turn on versioning",
                Op::Versioning,
            )),
        }
        let uniform = field(
            "uniform_bucket_level_access",
            "/iamConfiguration/uniformBucketLevelAccess/enabled",
        )
        .and_then(Value::as_bool);
        if uniform == Some(true) {
            found.push("uniform bucket-level access".into());
        } else {
            steps.push(step(
                StepKind::Complete,
                "turn on uniform bucket-level access",
                Op::UniformAccess,
            ));
        }
        let prevention = field(
            "public_access_prevention",
            "/iamConfiguration/publicAccessPrevention",
        )
        .and_then(Value::as_str);
        if prevention == Some("enforced") {
            found.push("public access prevention enforced".into());
        } else {
            steps.push(step(
                StepKind::Complete,
                "enforce public access prevention",
                Op::PublicAccessPrevention,
            ));
        }
        Survey {
            exists: true,
            found,
            steps,
            notes: Vec::new(),
        }
    }

    async fn apply(&self, op: &Op) -> anyhow::Result<()> {
        let url = self.url.as_str();
        let (flag, what) = match op {
            Op::CreateBucket => return self.create_bucket().await,
            Op::Versioning => ("--versioning", format!("turning on versioning of `{url}`")),
            Op::UniformAccess => (
                "--uniform-bucket-level-access",
                format!("turning on uniform bucket-level access of `{url}`"),
            ),
            Op::PublicAccessPrevention => (
                "--public-access-prevention",
                format!("enforcing public access prevention on `{url}`"),
            ),
        };
        let done = self
            .run(&["storage", "buckets", "update", url, flag], &what)
            .await?;
        if done.success() {
            return Ok(());
        }
        Err(cloud_cli::failure_in(
            &what,
            &done,
            &self.refused("storage.buckets.update", &self.on_bucket()),
            DOCS,
        ))
    }

    async fn create_bucket(&self) -> anyhow::Result<()> {
        let url = &self.url;
        let location = self
            .location()?
            .ok_or_else(|| anyhow::anyhow!("creating the GCS bucket `{url}` needs --location"))?;
        let location_flag = format!("--location={location}");
        let what = format!("`gcloud storage buckets create {url}`");
        let done = self
            .run(
                &[
                    "storage",
                    "buckets",
                    "create",
                    url,
                    &location_flag,
                    "--uniform-bucket-level-access",
                    "--public-access-prevention",
                ],
                &what,
            )
            .await?;
        if done.success() {
            return Ok(());
        }
        let stderr = done.stderr_text();
        // Created by an earlier try whose answer was lost: ours, the survey after checks it.
        if stderr.contains("you already own it") {
            return Ok(());
        }
        if stderr.contains("HTTPError 409") || stderr.contains("409 Conflict") {
            return Err(TfenvError::config(
                format!(
                    "{what} failed: the name is taken: another project owns a bucket named `{}` (bucket names are global across all of Google Cloud)",
                    self.bucket
                ),
                Some("choose another `bucket` name in the backend config".to_string()),
            )
            .into());
        }
        if stderr.contains("required property [project]") {
            return Err(TfenvError::config(
                format!("{what} failed: gcloud has no project to create the bucket in"),
                Some(
                    "set one with `gcloud config set project <project-id>` (or CLOUDSDK_CORE_PROJECT)"
                        .to_string(),
                ),
            )
            .into());
        }
        Err(cloud_cli::failure_in(
            &what,
            &done,
            &self.refused("storage.buckets.create", "the project"),
            DOCS,
        ))
    }

    /// `--location`, checked.
    fn location(&self) -> anyhow::Result<Option<String>> {
        let Some(location) = self.options.location.as_deref() else {
            return Ok(None);
        };
        let location = location.trim();
        if location.is_empty()
            || !location
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(TfenvError::usage(
                format!("`{location}` is not a GCS location"),
                Some("pass --location (e.g. europe-west1, EU)".to_string()),
            )
            .into());
        }
        Ok(Some(location.to_string()))
    }
}

/// What gcloud prints for a bucket that is not there.
fn bucket_missing(stderr: &str) -> bool {
    is_missing(stderr)
        || [
            "HTTPError 404",
            "404 Not Found",
            "bucket does not exist",
            "BucketNotFoundException",
        ]
        .iter()
        .any(|sign| stderr.contains(sign))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::super::Op as AnyOp;
    use super::*;
    use crate::backend::cloud_cli::testing::Cli;
    use crate::backend::is_auth;
    use crate::backend::tests::backend;
    use crate::error::{exit_for, hint_for};
    use crate::exit::Exit;
    use crate::process::scripted::{Reply as Answer, ScriptedRunner};

    fn options(cli: &Arc<Cli>, location: Option<&str>) -> Options {
        super::super::test_options(cli.clone(), location)
    }

    fn bucket() -> Backend {
        backend(
            "gcs",
            json!({"bucket": "tf-state", "prefix": "app", "credentials": "/keys/sa.json",
                "storage_custom_endpoint": "http://127.0.0.1:4443/storage/v1/"}),
            None,
        )
    }

    fn gcloud<'a>(backend: &'a Backend, options: &'a Options) -> Gcloud<'a> {
        Gcloud::with_bin(backend, options, "gcloud".into())
    }

    fn argv(words: &str) -> Vec<String> {
        words.split(' ').map(str::to_string).collect()
    }

    /// Each step as (kind, op, what is there now).
    fn steps(survey: &Survey) -> Vec<(StepKind, Op, Option<&str>)> {
        survey
            .steps
            .iter()
            .map(|s| match &s.op {
                AnyOp::Gcs(op) => (s.kind, op.clone(), s.found.as_deref()),
                other => panic!("not a gcs step: {other:?}"),
            })
            .collect()
    }

    /// Every call with the backend's key file and endpoint.
    fn env_is_the_backends(cli: &Cli) {
        for (args, env) in cli.calls() {
            assert_eq!(
                env,
                [
                    (
                        "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE".to_string(),
                        "/keys/sa.json".to_string()
                    ),
                    (
                        "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE".to_string(),
                        "http://127.0.0.1:4443/storage/v1/".to_string()
                    ),
                ],
                "{args:?}"
            );
        }
    }

    const MISSING: &str =
        "ERROR: (gcloud.storage.buckets.describe) gs://tf-state not found: 404.\n";
    const DESCRIBE: &str = "storage buckets describe gs://tf-state --format=json";

    #[tokio::test]
    async fn a_missing_bucket_without_location_is_an_error_naming_the_flag() {
        let cli = Cli::new(ScriptedRunner::default().expect(
            &["storage", "buckets", "describe"],
            Answer::fail(1, MISSING),
        ));
        let backend = bucket();
        let options = options(&cli, None);
        let err = gcloud(&backend, &options)
            .survey_bucket()
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the GCS bucket `gs://tf-state` does not exist; creating it needs --location"
        );
        assert_eq!(
            hint_for(&err),
            Some("pass --location (e.g. europe-west1, EU)")
        );
        assert_eq!(cli.calls()[0].0, argv(DESCRIBE));
    }

    #[tokio::test]
    async fn a_key_given_inline_is_refused_before_any_call_and_never_shown() {
        let cli = Cli::new(ScriptedRunner::default());
        let key = r#"{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----SECRET"}"#;
        let backend = backend(
            "gcs",
            json!({"bucket": "tf-state", "credentials": key}),
            None,
        );
        let err = survey_bucket(&backend, &options(&cli, Some("EU")))
            .await
            .unwrap_err();
        let text = format!("{err:#} {}", hint_for(&err).unwrap_or_default());
        assert!(text.contains("holds the key itself"), "{text}");
        assert!(!text.contains("SECRET"), "{text}");
        assert!(cli.calls().is_empty());
    }

    #[tokio::test]
    async fn a_missing_bucket_is_created_in_the_location_with_every_protection() {
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(
                    &["storage", "buckets", "describe"],
                    Answer::fail(1, MISSING),
                )
                .expect(&["storage", "buckets", "create"], Answer::ok(""))
                .expect(&["storage", "buckets", "update"], Answer::ok("")),
        );
        let backend = bucket();
        let options = options(&cli, Some("europe-west1"));
        let gcloud = gcloud(&backend, &options);
        let survey = gcloud.survey_bucket().await.unwrap();
        assert!(!survey.exists);
        assert_eq!(
            steps(&survey),
            [
                (StepKind::Create, Op::CreateBucket, None),
                (StepKind::Create, Op::Versioning, None),
            ]
        );
        assert_eq!(
            survey.steps[0].change,
            "create it in `europe-west1` with uniform bucket-level access and public access prevention enforced"
        );
        for step in &survey.steps {
            let AnyOp::Gcs(op) = &step.op else {
                unreachable!()
            };
            gcloud.apply(op).await.unwrap();
        }
        let calls: Vec<Vec<String>> = cli.calls().into_iter().map(|(a, _)| a).collect();
        assert_eq!(
            calls,
            [
                argv(DESCRIBE),
                argv(
                    "storage buckets create gs://tf-state --location=europe-west1 --uniform-bucket-level-access --public-access-prevention"
                ),
                argv("storage buckets update gs://tf-state --versioning"),
            ]
        );
        env_is_the_backends(&cli);
    }

    #[tokio::test]
    async fn a_bucket_these_credentials_may_not_read_is_a_permission_error_never_created() {
        let cli = Cli::new(ScriptedRunner::default().expect(
            &["storage", "buckets", "describe"],
            Answer::fail(1, "ERROR: (gcloud.storage.buckets.describe) HTTPError 403: ci@p.iam.gserviceaccount.com does not have storage.buckets.get access to the Google Cloud Storage bucket. Permission 'storage.buckets.get' denied on resource (or it may not exist).\n"),
        ));
        let backend = bucket();
        let options = options(&cli, Some("EU"));
        let err = gcloud(&backend, &options)
            .survey_bucket()
            .await
            .unwrap_err();
        assert!(is_permission(&err), "{err:#}");
        assert_eq!(
            err.to_string(),
            "the GCS bucket `gs://tf-state` exists, but these credentials may not use it (403): it belongs to another project, or they lack `storage.buckets.get` on it; tfenv used the key file `/keys/sa.json` (`credentials` in the backend config)"
        );
        assert!(
            hint_for(&err)
                .unwrap()
                .starts_with("bucket names are global"),
            "{err:#}"
        );
        assert_eq!(cli.calls().len(), 1, "nothing is created");
    }

    #[tokio::test]
    async fn no_credentials_is_an_auth_error_with_the_credential_fix() {
        let cli = Cli::new(ScriptedRunner::default().expect(
            &["storage", "buckets", "describe"],
            Answer::fail(1, "ERROR: (gcloud.storage.buckets.describe) You do not currently have an active account selected.\nPlease run:\n\n  $ gcloud auth login\n"),
        ));
        let backend = bucket();
        let options = options(&cli, Some("EU"));
        let err = gcloud(&backend, &options)
            .survey_bucket()
            .await
            .unwrap_err();
        assert!(is_auth(&err), "{err:#}");
        assert_eq!(hint_for(&err), Some(AUTH_FIX));
    }

    #[tokio::test]
    async fn a_name_taken_on_create_is_an_error_and_one_already_ours_is_done() {
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(
                    &["storage", "buckets", "create"],
                    Answer::fail(1, "ERROR: (gcloud.storage.buckets.create) HTTPError 409: The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.\n"),
                )
                .expect(
                    &["storage", "buckets", "create"],
                    Answer::fail(1, "ERROR: (gcloud.storage.buckets.create) HTTPError 409: Your previous request to create the named bucket succeeded and you already own it.\n"),
                )
                .expect(
                    &["storage", "buckets", "create"],
                    Answer::fail(1, "ERROR: (gcloud.storage.buckets.create) The required property [project] is not currently set.\n"),
                ),
        );
        let backend = bucket();
        let options = options(&cli, Some("EU"));
        let gcloud = gcloud(&backend, &options);
        let err = gcloud.apply(&Op::CreateBucket).await.unwrap_err();
        assert_eq!(exit_for(&err), Exit::Failure);
        assert_eq!(
            err.to_string(),
            "`gcloud storage buckets create gs://tf-state` failed: the name is taken: another project owns a bucket named `tf-state` (bucket names are global across all of Google Cloud)"
        );
        assert_eq!(
            hint_for(&err),
            Some("choose another `bucket` name in the backend config")
        );
        gcloud.apply(&Op::CreateBucket).await.unwrap();
        let err = gcloud.apply(&Op::CreateBucket).await.unwrap_err();
        assert!(
            hint_for(&err)
                .unwrap()
                .contains("gcloud config set project"),
            "{err:#}"
        );
    }

    #[tokio::test]
    async fn a_bucket_with_everything_on_needs_no_step() {
        let shown = json!({"name": "tf-state", "location": "EU", "versioning_enabled": true,
            "uniform_bucket_level_access": true, "public_access_prevention": "enforced"});
        // The JSON API's keys (`--raw`) say the same.
        let raw = json!({"name": "tf-state", "versioning": {"enabled": true},
            "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": true}, "publicAccessPrevention": "enforced"}});
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(
                    &["storage", "buckets", "describe"],
                    Answer::ok(&shown.to_string()),
                )
                .expect(
                    &["storage", "buckets", "describe"],
                    Answer::ok(&raw.to_string()),
                ),
        );
        let backend = bucket();
        let options = options(&cli, None);
        let gcloud = gcloud(&backend, &options);
        let survey = gcloud.survey_bucket().await.unwrap();
        assert!(survey.exists && survey.steps.is_empty(), "{survey:?}");
        assert_eq!(
            survey.found,
            [
                "in `EU`",
                "versioning enabled",
                "uniform bucket-level access",
                "public access prevention enforced",
            ]
        );
        let survey = gcloud.survey_bucket().await.unwrap();
        assert!(survey.exists && survey.steps.is_empty(), "{survey:?}");
    }

    #[tokio::test]
    async fn versioning_turned_off_is_fixed_and_protections_never_set_are_completed() {
        let off = json!({"name": "tf-state", "location": "EU", "versioning_enabled": false,
            "uniform_bucket_level_access": false, "public_access_prevention": "inherited"});
        // Nothing set: no versioning key at all.
        let bare = json!({"name": "tf-state", "location": "EU"});
        let cli = Cli::new(
            ScriptedRunner::default()
                .expect(
                    &["storage", "buckets", "describe"],
                    Answer::ok(&off.to_string()),
                )
                .expect(
                    &["storage", "buckets", "describe"],
                    Answer::ok(&bare.to_string()),
                )
                .expect(&["storage", "buckets", "update"], Answer::ok(""))
                .expect(&["storage", "buckets", "update"], Answer::ok(""))
                .expect(&["storage", "buckets", "update"], Answer::ok("")),
        );
        let backend = bucket();
        let options = options(&cli, None);
        let gcloud = gcloud(&backend, &options);
        let survey = gcloud.survey_bucket().await.unwrap();
        assert_eq!(
            steps(&survey),
            [
                (StepKind::Fix, Op::Versioning, Some("versioning turned off")),
                (StepKind::Complete, Op::UniformAccess, None),
                (StepKind::Complete, Op::PublicAccessPrevention, None),
            ]
        );
        let survey = gcloud.survey_bucket().await.unwrap();
        assert_eq!(
            steps(&survey),
            [
                (StepKind::Complete, Op::Versioning, None),
                (StepKind::Complete, Op::UniformAccess, None),
                (StepKind::Complete, Op::PublicAccessPrevention, None),
            ]
        );
        for step in &survey.steps {
            let AnyOp::Gcs(op) = &step.op else {
                unreachable!()
            };
            gcloud.apply(op).await.unwrap();
        }
        let calls: Vec<Vec<String>> = cli.calls().into_iter().map(|(a, _)| a).collect();
        assert_eq!(
            calls[2..],
            [
                argv("storage buckets update gs://tf-state --versioning"),
                argv("storage buckets update gs://tf-state --uniform-bucket-level-access"),
                argv("storage buckets update gs://tf-state --public-access-prevention"),
            ]
        );
        env_is_the_backends(&cli);
    }

    #[tokio::test]
    async fn a_refused_update_names_the_permission_to_grant() {
        let cli = Cli::new(ScriptedRunner::default().expect(
            &["storage", "buckets", "update"],
            Answer::fail(1, "ERROR: (gcloud.storage.buckets.update) HTTPError 403: ci@p.iam.gserviceaccount.com does not have storage.buckets.update access to the Google Cloud Storage bucket.\n"),
        ));
        let backend = bucket();
        let options = options(&cli, None);
        let err = gcloud(&backend, &options)
            .apply(&Op::Versioning)
            .await
            .unwrap_err();
        assert!(is_permission(&err), "{err:#}");
        let hint = hint_for(&err).unwrap();
        assert!(
            hint.contains("grant `storage.buckets.update` on the bucket `tf-state`")
                && hint.contains("docs/bootstrap.md (Permissions)"),
            "{hint}"
        );
    }

    #[tokio::test]
    async fn a_location_gcloud_would_misread_is_refused_before_any_call() {
        let cli = Cli::new(ScriptedRunner::default());
        let backend = bucket();
        let options = options(&cli, Some("EU --project=other"));
        let err = gcloud(&backend, &options)
            .apply(&Op::CreateBucket)
            .await
            .unwrap_err();
        assert_eq!(exit_for(&err), Exit::Usage, "{err:#}");
        assert!(cli.calls().is_empty());
    }
}
