//! The AWS SDK for Rust, configured from an s3 backend config the way terraform's s3
//! backend configures itself: one place maps the backend's settings (both the names of
//! Terraform ≥ 1.6 and the older ones) to S3 and DynamoDB clients. Every call has a
//! deadline and a bounded retry; a failure says whether the backend was unreachable,
//! refused the credentials, or accepted them and denied the call (a missing permission,
//! named in the hint), and which credentials tfenv used.
//!
//! tfenv reads state and locks through these clients and writes only its own ledger
//! objects beside the state (`<state key>.tfenv/`, create-only): terraform stays the only
//! writer of state.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{
    self, ProvideCredentials, SharedCredentialsProvider, error::CredentialsError,
};
use aws_runtime::env_config::file::{
    EnvConfigFileKind as ProfileFileKind, EnvConfigFiles as ProfileFiles,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use serde_json::Value;

use super::Backend;
use crate::error::TfenvError;

/// How long connecting may take; a backend that does not accept a connection by then
/// is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one attempt of a call may take, and all attempts together. Commands with
/// `--timeout` put their own, usually shorter, deadline around the whole read.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts per call unless the backend config's `max_retries` says otherwise (terraform
/// defaults to 5 retries; tfenv reads and gives up sooner, at most `MAX_ATTEMPTS`).
const DEFAULT_ATTEMPTS: u32 = 3;
const MAX_ATTEMPTS: u32 = 6;

/// What the backend config says about reaching AWS, resolved from both generations of
/// setting names. Holds secrets (`secret_key`, `token`): never printed (no `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<Profile>,
    /// `access_key` / `secret_key` / `token` from the backend config.
    pub keys: Option<(String, String, Option<String>)>,
    pub credentials_files: Vec<PathBuf>,
    pub config_files: Vec<PathBuf>,
    pub assume_role: Option<AssumeRole>,
    pub web_identity: Option<WebIdentity>,
    pub s3_endpoint: Option<String>,
    pub dynamodb_endpoint: Option<String>,
    pub sts_endpoint: Option<String>,
    pub sts_region: Option<String>,
    pub path_style: bool,
    /// `skip_metadata_api_check`: never ask the EC2 instance metadata service.
    pub skip_metadata: bool,
    pub use_fips: bool,
    pub use_dualstack: bool,
    pub max_attempts: u32,
    /// AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE when set: where the SDK looks for
    /// the files the backend config does not name (for messages).
    pub env_files: (Option<String>, Option<String>),
    /// `http_proxy` / `https_proxy` / `no_proxy` (Terraform ≥ 1.6); when none is set,
    /// HTTP_PROXY / HTTPS_PROXY / NO_PROXY from the environment, as terraform does.
    pub proxy: Proxy,
}

/// The proxies of the backend config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Proxy {
    pub http: Option<String>,
    pub https: Option<String>,
    pub no_proxy: Option<String>,
}

/// A named profile, and who named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Profile {
    pub name: String,
    /// `profile` in the backend config, or the `AWS_PROFILE` variable.
    pub from_config: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AssumeRole {
    pub role_arn: String,
    pub session_name: Option<String>,
    pub external_id: Option<String>,
    pub duration: Option<Duration>,
    pub policy: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WebIdentity {
    pub role_arn: String,
    pub session_name: Option<String>,
    pub token_file: Option<PathBuf>,
    /// The token itself (`web_identity_token`): a secret.
    pub token: Option<String>,
}

impl AwsSettings {
    /// The settings of an s3 backend; `var` reads the environment (`AWS_PROFILE`).
    pub fn from_backend(
        backend: &Backend,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<AwsSettings> {
        let s = |name: &str| backend.setting(name).filter(|v| !v.is_empty());
        let flag = |name: &str| s(name).as_deref() == Some("true");
        let block = |name: &str| backend.settings.get(name).and_then(Value::as_object);
        let nested = |block_name: &str, name: &str| {
            block(block_name)
                .and_then(|b| b.get(name))
                .and_then(super::setting_text)
                .filter(|v| !v.is_empty())
        };
        let endpoint = |service: &str, old: &str| nested("endpoints", service).or_else(|| s(old));

        let keys = match (s("access_key"), s("secret_key")) {
            (Some(access), Some(secret)) => Some((access, secret, s("token"))),
            // Terraform hands a lone `token` to an empty static key pair, which fails.
            (None, None) if s("token").is_some() => {
                return Err(TfenvError::config(
                    "the s3 backend config sets `token` without `access_key` and `secret_key`",
                    Some(
                        "a session token goes with its key pair: set all three, or remove `token`"
                            .to_string(),
                    ),
                )
                .into());
            }
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                return Err(TfenvError::config(
                    "the s3 backend config sets only one of `access_key` and `secret_key`",
                    Some("set both, or neither to use the usual AWS credential chain".to_string()),
                )
                .into());
            }
        };
        let profile = match s("profile") {
            Some(name) => Some(Profile {
                name,
                from_config: true,
            }),
            None => var("AWS_PROFILE")
                .filter(|p| !p.is_empty())
                .map(|name| Profile {
                    name,
                    from_config: false,
                }),
        };
        // Terraform ≥ 1.6: an `assume_role { … }` block; before: `role_arn` & co. at the top.
        let assume_role = match nested("assume_role", "role_arn") {
            Some(role_arn) => Some(AssumeRole {
                role_arn,
                session_name: nested("assume_role", "session_name"),
                external_id: nested("assume_role", "external_id"),
                duration: nested("assume_role", "duration")
                    .map(|d| parse_duration(&d, "assume_role.duration"))
                    .transpose()?,
                policy: nested("assume_role", "policy"),
            }),
            None => match s("role_arn") {
                Some(role_arn) => Some(AssumeRole {
                    role_arn,
                    session_name: s("session_name"),
                    external_id: s("external_id"),
                    duration: s("assume_role_duration_seconds")
                        .map(|secs| {
                            parse_duration(&format!("{secs}s"), "assume_role_duration_seconds")
                        })
                        .transpose()?,
                    policy: s("assume_role_policy"),
                }),
                None => None,
            },
        };
        // `role_arn` and the token file fall back to AWS_ROLE_ARN and
        // AWS_WEB_IDENTITY_TOKEN_FILE, as in terraform.
        let env = |name: &str| var(name).filter(|v| !v.is_empty());
        let web_identity = match block("assume_role_with_web_identity") {
            None => None,
            Some(_) => {
                let web = |name: &str| nested("assume_role_with_web_identity", name);
                let Some(role_arn) = web("role_arn").or_else(|| env("AWS_ROLE_ARN")) else {
                    return Err(TfenvError::config(
                        "`assume_role_with_web_identity` in the s3 backend config has no `role_arn`",
                        Some("set its `role_arn`, or AWS_ROLE_ARN".to_string()),
                    )
                    .into());
                };
                let token = web("web_identity_token");
                let token_file = web("web_identity_token_file")
                    .map(|f| expand_home(&f, var))
                    .or_else(|| env("AWS_WEB_IDENTITY_TOKEN_FILE").map(PathBuf::from));
                if token.is_none() && token_file.is_none() {
                    return Err(TfenvError::config(
                        format!(
                            "`assume_role_with_web_identity` for `{role_arn}` names neither `web_identity_token` nor `web_identity_token_file`"
                        ),
                        Some("set one of them, or AWS_WEB_IDENTITY_TOKEN_FILE".to_string()),
                    )
                    .into());
                }
                Some(WebIdentity {
                    role_arn,
                    session_name: web("session_name"),
                    token_file,
                    token,
                })
            }
        };
        let max_attempts = match s("max_retries") {
            None => DEFAULT_ATTEMPTS,
            Some(n) => n
                .parse::<u32>()
                .map_err(|_| {
                    TfenvError::config(
                        format!("the s3 backend's `max_retries` is `{n}`, not a number"),
                        None,
                    )
                })?
                .saturating_add(1)
                .min(MAX_ATTEMPTS),
        };
        Ok(AwsSettings {
            region: s("region"),
            profile,
            keys,
            credentials_files: files(
                backend,
                "shared_credentials_files",
                "shared_credentials_file",
                var,
            ),
            config_files: files(backend, "shared_config_files", "", var),
            assume_role,
            web_identity,
            s3_endpoint: endpoint("s3", "endpoint"),
            dynamodb_endpoint: endpoint("dynamodb", "dynamodb_endpoint"),
            sts_endpoint: endpoint("sts", "sts_endpoint"),
            sts_region: s("sts_region"),
            path_style: flag("use_path_style") || flag("force_path_style"),
            skip_metadata: flag("skip_metadata_api_check"),
            use_fips: flag("use_fips_endpoint"),
            use_dualstack: flag("use_dualstack_endpoint"),
            max_attempts,
            env_files: (env("AWS_SHARED_CREDENTIALS_FILE"), env("AWS_CONFIG_FILE")),
            proxy: Proxy {
                http: s("http_proxy"),
                https: s("https_proxy"),
                no_proxy: s("no_proxy"),
            },
        })
    }

    /// Equal for two backends that can share clients.
    pub fn cache_key(&self) -> String {
        let files = |list: &[PathBuf]| {
            list.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let parts = [
            self.region.clone().unwrap_or_default(),
            format!("{:?}", self.profile),
            self.keys
                .as_ref()
                .map(|(a, s, t)| format!("{a}\u{1}{s}\u{1}{}", t.clone().unwrap_or_default()))
                .unwrap_or_default(),
            files(&self.credentials_files),
            files(&self.config_files),
            format!("{:?}", self.assume_role),
            format!("{:?}", self.web_identity),
            format!(
                "{:?}{:?}{:?}{:?}",
                self.s3_endpoint, self.dynamodb_endpoint, self.sts_endpoint, self.sts_region
            ),
            format!("{:?}", self.proxy),
            format!(
                "{}{}{}{}{}",
                self.path_style,
                self.skip_metadata,
                self.use_fips,
                self.use_dualstack,
                self.max_attempts
            ),
        ];
        parts.join("\u{0}")
    }

    /// Where tfenv takes credentials from, for people (never a secret).
    pub fn credential_source(&self) -> String {
        self.source_text(None)
    }

    /// The configured source; for the default chain, `answered` (the provider in it that
    /// handed out credentials) when known.
    fn source_text(&self, answered: Option<&str>) -> String {
        let base = if let Some(web) = &self.web_identity {
            let token = match (&web.token_file, &web.token) {
                (Some(file), _) => format!("the token in `{}`", file.display()),
                // The token itself is a secret: only where it is set.
                (None, _) => "the backend config's `web_identity_token`".to_string(),
            };
            format!(
                "web identity for `{}` (`assume_role_with_web_identity`, {token})",
                web.role_arn
            )
        } else if self.keys.is_some() {
            "`access_key` / `secret_key` in the backend config".to_string()
        } else if let Some(profile) = &self.profile {
            format!(
                "profile `{}` ({}) in {}",
                profile.name,
                if profile.from_config {
                    "`profile` in the backend config"
                } else {
                    "AWS_PROFILE"
                },
                self.profile_files_shown()
            )
        } else if answered == Some(DEFAULT_PROFILE) {
            format!("the default profile of {}", self.profile_files_shown())
        } else if let Some(provider) = answered {
            provider.to_string()
        } else {
            format!(
                "the AWS default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the default profile of {}, web identity, the container or instance role{})",
                self.profile_files_shown(),
                if self.skip_metadata {
                    "; not the instance metadata service: `skip_metadata_api_check`"
                } else {
                    ""
                }
            )
        };
        match &self.assume_role {
            Some(role) => format!("{base}, then assuming `{}`", role.role_arn),
            None => base,
        }
    }

    /// The shared files a profile is looked up in: the backend config's, else for each
    /// kind the one its variable names, else the one under ~/.aws.
    fn profile_files_shown(&self) -> String {
        let kind = |named: &[PathBuf],
                    setting: &str,
                    var: &str,
                    from_env: &Option<String>,
                    default: &str| {
            if !named.is_empty() {
                let files: Vec<String> =
                    named.iter().map(|p| format!("`{}`", p.display())).collect();
                format!("{} (`{setting}`)", files.join(", "))
            } else if let Some(file) = from_env {
                format!("`{file}` ({var})")
            } else {
                format!("`{default}`")
            }
        };
        format!(
            "{} and {}",
            kind(
                &self.credentials_files,
                "shared_credentials_files",
                "AWS_SHARED_CREDENTIALS_FILE",
                &self.env_files.0,
                "~/.aws/credentials"
            ),
            kind(
                &self.config_files,
                "shared_config_files",
                "AWS_CONFIG_FILE",
                &self.env_files.1,
                "~/.aws/config"
            )
        )
    }

    /// What to change when the credentials are refused or missing.
    pub fn credential_fix(&self) -> String {
        let base = if let Some(web) = &self.web_identity {
            format!(
                "fix `assume_role_with_web_identity` in the backend config: its `role_arn` (`{}`) and its `web_identity_token_file` or `web_identity_token` (or AWS_WEB_IDENTITY_TOKEN_FILE)",
                web.role_arn
            )
        } else if self.keys.is_some() {
            "fix `access_key` / `secret_key` (and `token`) in the backend config".to_string()
        } else if let Some(profile) = &self.profile {
            if profile.from_config {
                format!(
                    "fix profile `{}` in {}, or `profile` in the backend config (for SSO: `aws sso login --profile {}`)",
                    profile.name,
                    self.profile_files_shown(),
                    profile.name
                )
            } else {
                format!(
                    "fix profile `{}` in {}, or set AWS_PROFILE to another (for SSO: `aws sso login --profile {}`)",
                    profile.name,
                    self.profile_files_shown(),
                    profile.name
                )
            }
        } else {
            format!(
                "export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, set AWS_PROFILE, set `profile` in the backend config, or give the default profile keys in {}",
                self.profile_files_shown()
            )
        };
        match &self.assume_role {
            Some(role) => format!(
                "{base}; and check that they may assume `{}` (`assume_role` / `role_arn` in the backend config)",
                role.role_arn
            ),
            None => base,
        }
    }
}

/// A list of files (`shared_credentials_files = [...]`) or the older single-file name.
fn files(
    backend: &Backend,
    list: &str,
    single: &str,
    var: &dyn Fn(&str) -> Option<String>,
) -> Vec<PathBuf> {
    match backend.settings.get(list) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|p| !p.is_empty())
            .map(|p| expand_home(p, var))
            .collect(),
        Some(Value::String(one)) if !one.is_empty() => vec![expand_home(one, var)],
        _ if !single.is_empty() => backend
            .setting(single)
            .filter(|p| !p.is_empty())
            .map(|p| vec![expand_home(&p, var)])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// `~/…` as terraform expands it (HOME read through `var`).
fn expand_home(path: &str, var: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match (
        path.strip_prefix("~/"),
        var("HOME").filter(|h| !h.is_empty()),
    ) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

fn parse_duration(text: &str, setting: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(text).map_err(|e| {
        TfenvError::config(
            format!("the s3 backend's `{setting}` is `{text}`, not a duration ({e})"),
            None,
        )
        .into()
    })
}

/// The default chain's shared-files provider, as `Recording` names it.
const DEFAULT_PROFILE: &str = "the default profile of the shared files";

/// S3 and DynamoDB clients for one backend config, and where their credentials come from.
#[derive(Clone)]
pub(crate) struct Aws {
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// STS with the same credentials: who they are (`bootstrap` checks
    /// `allowed_account_ids` before it creates anything).
    pub sts: aws_sdk_sts::Client,
    /// The S3 endpoint the client was given: the backend config's, else
    /// AWS_ENDPOINT_URL_S3, else the one the SDK found (AWS_ENDPOINT_URL, `endpoint_url` in
    /// the shared config file); `None`: AWS's own.
    pub s3_endpoint_used: Option<String>,
    pub settings: Arc<AwsSettings>,
    /// The provider both clients take their credentials from (`check_credentials`).
    credentials: SharedCredentialsProvider,
    /// Which source handed out the credentials last (see `credentials_chain`).
    used: Arc<Mutex<Option<&'static str>>>,
}

/// Clients are built once per distinct backend config and shared: one connection pool
/// for every environment of a `status`.
type Cache = Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Aws>>>>;
static CLIENTS: OnceLock<Cache> = OnceLock::new();

/// The clients for `backend` (an s3 backend).
pub(crate) async fn clients(backend: &Backend) -> anyhow::Result<Aws> {
    let settings = AwsSettings::from_backend(backend, &|name| std::env::var(name).ok())?;
    let cell = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .expect("aws client cache")
        .entry(settings.cache_key())
        .or_default()
        .clone();
    cell.get_or_try_init(|| build(settings)).await.cloned()
}

/// The HTTP client (rustls with ring, the system's roots; plain http for local
/// emulators) for one proxy setting, shared by every client that uses it.
fn http_client(proxy: &Proxy) -> anyhow::Result<aws_sdk_s3::config::SharedHttpClient> {
    use aws_smithy_http_client::proxy::ProxyConfig;
    static CLIENTS: OnceLock<Mutex<HashMap<Proxy, aws_sdk_s3::config::SharedHttpClient>>> =
        OnceLock::new();
    let mut clients = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .expect("http clients");
    if let Some(client) = clients.get(proxy) {
        return Ok(client.clone());
    }
    let bad = |setting: &str, e: &dyn std::fmt::Display| {
        TfenvError::config(
            format!("the s3 backend's `{setting}` is not a proxy URL ({e})"),
            None,
        )
    };
    let config = match (&proxy.http, &proxy.https) {
        (None, None) => ProxyConfig::from_env(),
        (http, https) => {
            let mut config = match (http, https) {
                (Some(h), Some(s)) if h == s => {
                    ProxyConfig::all(h).map_err(|e| bad("http_proxy", &e))?
                }
                (_, Some(s)) => ProxyConfig::https(s).map_err(|e| bad("https_proxy", &e))?,
                (Some(h), None) => ProxyConfig::http(h).map_err(|e| bad("http_proxy", &e))?,
                (None, None) => ProxyConfig::disabled(),
            };
            if let Some(rules) = &proxy.no_proxy {
                config = config.no_proxy(rules);
            }
            config
        }
    };
    let client = aws_smithy_http_client::Builder::new().build_with_connector_fn(
        move |settings, components| {
            use aws_smithy_http_client::{Connector, tls};
            let mut builder = Connector::builder().proxy_config(config.clone());
            builder.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                builder.set_sleep_impl(components.sleep_impl());
            }
            builder
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::Ring,
                ))
                .build()
        },
    );
    clients.insert(proxy.clone(), client.clone());
    Ok(client)
}

async fn build(settings: AwsSettings) -> anyhow::Result<Aws> {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(CALL_TIMEOUT)
        .build();
    let retry = RetryConfig::standard().with_max_attempts(settings.max_attempts);
    let http = http_client(&settings.proxy)?;
    let profile_files = profile_files(&settings);

    // Region: the backend config's, else what the SDK finds (AWS_REGION, the profile).
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http.clone())
        .timeout_config(timeouts.clone())
        .retry_config(retry.clone())
        .use_fips(settings.use_fips)
        .use_dual_stack(settings.use_dualstack);
    if let Some(files) = &profile_files {
        loader = loader.profile_files(files.clone());
    }
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(&profile.name);
    }
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    // Credentials are resolved by tfenv's own chain below; the loader must not build
    // (and probe) the default one.
    let base = loader.no_credentials().load().await;
    let Some(region) = base.region().cloned() else {
        return Err(TfenvError::config(
            "the s3 backend config has no `region`, and neither AWS_REGION nor the profile sets one",
            Some("set `region` in the backend config".to_string()),
        )
        .into());
    };

    let mut provider_config = ProviderConfig::default()
        .with_http_client(http)
        .with_region(Some(region.clone()))
        .with_timeout_config(timeouts.clone())
        .with_retry_config(retry.clone());
    provider_config = provider_config.with_use_fips(Some(settings.use_fips));
    let used = Arc::new(Mutex::new(None));
    // `assume_role_with_web_identity` replaces the chain; `assume_role` builds on what
    // either gives (terraform's order).
    let credentials = match &settings.web_identity {
        Some(web) => SharedCredentialsProvider::new(Recording {
            inner: SharedCredentialsProvider::new(web_identity(
                web,
                &sts_config(&base, &settings, None),
            )?),
            name: "web identity (`assume_role_with_web_identity` in the backend config)",
            used: used.clone(),
        }),
        None => credentials_chain(&settings, &provider_config, profile_files.as_ref(), &used),
    };
    let credentials = match &settings.assume_role {
        Some(role) => {
            let sts_config = sts_config(&base, &settings, Some(credentials.clone()));
            let mut builder = aws_config::sts::AssumeRoleProvider::builder(role.role_arn.clone())
                .configure(&sts_config)
                .session_name(
                    role.session_name
                        .clone()
                        .unwrap_or_else(|| "tfenv".to_string()),
                );
            if let Some(id) = &role.external_id {
                builder = builder.external_id(id.clone());
            }
            if let Some(duration) = role.duration {
                builder = builder.session_length(duration);
            }
            if let Some(policy) = &role.policy {
                builder = builder.policy(policy.clone());
            }
            SharedCredentialsProvider::new(builder.build_from_provider(credentials).await)
        }
        None => credentials,
    };

    let mut s3 = aws_sdk_s3::config::Builder::from(&base)
        .credentials_provider(credentials.clone())
        .force_path_style(settings.path_style);
    if let Some(url) = &settings.s3_endpoint {
        s3 = s3.endpoint_url(url);
    }
    let mut dynamodb =
        aws_sdk_dynamodb::config::Builder::from(&base).credentials_provider(credentials.clone());
    if let Some(url) = &settings.dynamodb_endpoint {
        dynamodb = dynamodb.endpoint_url(url);
    }
    let sts = aws_sdk_sts::Client::new(&sts_config(&base, &settings, Some(credentials.clone())));
    let s3_endpoint_used = settings
        .s3_endpoint
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
        .or_else(|| base.endpoint_url().map(str::to_string));
    Ok(Aws {
        s3_endpoint_used,
        s3: aws_sdk_s3::Client::from_conf(s3.build()),
        dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
        sts,
        settings: Arc::new(settings),
        credentials,
        used,
    })
}

fn profile_files(settings: &AwsSettings) -> Option<ProfileFiles> {
    if settings.credentials_files.is_empty() && settings.config_files.is_empty() {
        return None;
    }
    let mut builder = ProfileFiles::builder();
    // Files the backend names replace the default ones of their kind.
    if settings.credentials_files.is_empty() {
        builder = builder.include_default_credentials_file(true);
    }
    if settings.config_files.is_empty() {
        builder = builder.include_default_config_file(true);
    }
    for file in &settings.credentials_files {
        builder = builder.with_file(ProfileFileKind::Credentials, file);
    }
    for file in &settings.config_files {
        builder = builder.with_file(ProfileFileKind::Config, file);
    }
    Some(builder.build())
}

/// The name of the environment's credentials in the chain (see `credentials_chain`).
const FROM_ENVIRONMENT: &str = "the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)";

/// The credentials terraform's s3 backend would use, before any role is assumed: keys
/// in the backend config; else a profile named explicitly (the backend's `profile` or
/// AWS_PROFILE, which win over keys in the environment, as in terraform); else the
/// usual chain, without the instance metadata service when `skip_metadata_api_check`.
/// Each source records its name in `used` when it hands out credentials.
fn credentials_chain(
    settings: &AwsSettings,
    config: &ProviderConfig,
    files: Option<&ProfileFiles>,
    used: &Arc<Mutex<Option<&'static str>>>,
) -> SharedCredentialsProvider {
    let named = |name: &'static str, inner: SharedCredentialsProvider| Recording {
        inner,
        name,
        used: used.clone(),
    };
    if let Some((access, secret, token)) = &settings.keys {
        return SharedCredentialsProvider::new(named(
            "the backend config",
            SharedCredentialsProvider::new(Credentials::new(
                access,
                secret,
                token.clone(),
                None,
                "backend config",
            )),
        ));
    }
    let profile = |name: Option<&str>| {
        let mut builder =
            aws_config::profile::ProfileFileCredentialsProvider::builder().configure(config);
        if let Some(name) = name {
            builder = builder.profile_name(name);
        }
        if let Some(files) = files {
            builder = builder.profile_files(files.clone());
        }
        SharedCredentialsProvider::new(builder.build())
    };
    if let Some(explicit) = &settings.profile {
        return SharedCredentialsProvider::new(named(
            "the named profile",
            profile(Some(&explicit.name)),
        ));
    }
    let mut chain = CredentialsProviderChain::first_try(
        "Environment",
        named(
            FROM_ENVIRONMENT,
            SharedCredentialsProvider::new(
                aws_config::environment::credentials::EnvironmentVariableCredentialsProvider::new(),
            ),
        ),
    )
    .or_else("Profile", named(DEFAULT_PROFILE, profile(None)))
    .or_else(
        "WebIdentityToken",
        named(
            "web identity (AWS_WEB_IDENTITY_TOKEN_FILE / AWS_ROLE_ARN)",
            SharedCredentialsProvider::new(
                aws_config::web_identity_token::WebIdentityTokenCredentialsProvider::builder()
                    .configure(config)
                    .build(),
            ),
        ),
    )
    .or_else(
        "EcsContainer",
        named(
            "the container's role (ECS)",
            SharedCredentialsProvider::new(
                aws_config::ecs::EcsCredentialsProvider::builder()
                    .configure(config)
                    .build(),
            ),
        ),
    );
    if !settings.skip_metadata {
        chain = chain.or_else(
            "Ec2InstanceMetadata",
            named(
                "the instance's role (EC2 instance metadata)",
                SharedCredentialsProvider::new(
                    aws_config::imds::credentials::ImdsCredentialsProvider::builder()
                        .configure(config)
                        .build(),
                ),
            ),
        );
    }
    SharedCredentialsProvider::new(chain)
}

/// The SDK config STS is called with to assume a role: the backend's `endpoints.sts` and
/// `sts_region` when set.
fn sts_config(
    base: &SdkConfig,
    settings: &AwsSettings,
    credentials: Option<SharedCredentialsProvider>,
) -> SdkConfig {
    let mut builder = base.to_builder();
    builder.set_credentials_provider(credentials);
    if let Some(url) = &settings.sts_endpoint {
        builder = builder.endpoint_url(url);
    }
    if let Some(region) = &settings.sts_region {
        builder = builder.region(Region::new(region.clone()));
    }
    builder.build()
}

/// `assume_role_with_web_identity`: exchanges the token — read from its file at each
/// refresh (CI rotates it), or given inline — for the role's credentials with STS at the
/// backend's `endpoints.sts` / `sts_region`. The inline token never touches the disk.
#[derive(Debug)]
struct WebIdentityProvider {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    session_name: String,
    token: WebToken,
}

enum WebToken {
    File(PathBuf),
    Inline(String),
}

/// Never the token itself.
impl std::fmt::Debug for WebToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebToken::File(path) => write!(f, "File({})", path.display()),
            WebToken::Inline(_) => f.write_str("Inline(** redacted **)"),
        }
    }
}

fn web_identity(web: &WebIdentity, sts_config: &SdkConfig) -> anyhow::Result<WebIdentityProvider> {
    let token = match (&web.token_file, &web.token) {
        (Some(file), _) => WebToken::File(file.clone()),
        (None, Some(token)) => WebToken::Inline(token.clone()),
        // `from_backend` refuses a web identity with neither.
        (None, None) => {
            return Err(TfenvError::config(
                format!("no web identity token for `{}`", web.role_arn),
                None,
            )
            .into());
        }
    };
    Ok(WebIdentityProvider {
        sts: aws_sdk_sts::Client::new(sts_config),
        role_arn: web.role_arn.clone(),
        session_name: web
            .session_name
            .clone()
            .unwrap_or_else(|| "tfenv".to_string()),
        token,
    })
}

impl ProvideCredentials for WebIdentityProvider {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            let token = match &self.token {
                WebToken::Inline(token) => token.clone(),
                WebToken::File(path) => std::fs::read_to_string(path)
                    .map(|t| t.trim().to_string())
                    .map_err(|e| {
                        CredentialsError::invalid_configuration(format!(
                            "cannot read the web identity token file `{}`: {e}",
                            path.display()
                        ))
                    })?,
            };
            let reply = self
                .sts
                .assume_role_with_web_identity()
                .role_arn(&self.role_arn)
                .role_session_name(&self.session_name)
                .web_identity_token(token)
                .send()
                .await
                .map_err(CredentialsError::provider_error)?;
            let given = reply.credentials.ok_or_else(|| {
                CredentialsError::unhandled(
                    "STS answered AssumeRoleWithWebIdentity without credentials",
                )
            })?;
            Ok(Credentials::new(
                given.access_key_id,
                given.secret_access_key,
                Some(given.session_token),
                std::time::SystemTime::try_from(given.expiration).ok(),
                "WebIdentityToken",
            ))
        })
    }
}

/// Hands out its inner provider's credentials and, when it does, records its name, so
/// that a refusal can say which credentials were refused.
#[derive(Debug)]
struct Recording {
    inner: SharedCredentialsProvider,
    name: &'static str,
    used: Arc<Mutex<Option<&'static str>>>,
}

impl ProvideCredentials for Recording {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            let credentials = self.inner.provide_credentials().await?;
            *self.used.lock().expect("credential source") = Some(self.name);
            Ok(credentials)
        })
    }
}

impl Aws {
    /// Which credentials the last call used, for a message: the configured source and,
    /// for the default chain, the provider in it that answered.
    fn credentials_used(&self) -> String {
        let source = self.settings.credential_source();
        match *self.used.lock().expect("credential source") {
            Some(provider)
                if self.settings.keys.is_none()
                    && self.settings.profile.is_none()
                    && self.settings.web_identity.is_none() =>
            {
                format!("{source}; they came from {provider}")
            }
            _ => source,
        }
    }

    /// Where `credentials` came from, for people: the source that answered and at most
    /// the access key's last 4 characters.
    fn credentials_found(&self, credentials: &Credentials) -> String {
        let answered = *self.used.lock().expect("credential source");
        let source = self.settings.source_text(answered);
        let key = credentials.access_key_id();
        match key.char_indices().rev().nth(3) {
            Some((tail, _)) if key.chars().count() >= 16 => {
                format!("{source} (access key `…{}`)", &key[tail..])
            }
            _ => source,
        }
    }

    /// An SDK error as tfenv reports it: `what` failed, and why, in one line, typed as
    /// `Unreachable` when the backend did not answer (or not in time), as a credential
    /// problem (with what to fix) when it refused them or none were found, and as a
    /// permission problem (with the permission to grant) when it accepted them but
    /// denied the call (`AccessDenied`): `needs` says which call it was.
    pub fn failure<E>(
        &self,
        needs: &Needs,
        what: &str,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> anyhow::Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let service = needs.service();
        let credentials_missing =
            error_chain(&err).any(|cause| cause.downcast_ref::<CredentialsError>().is_some());
        if credentials_missing {
            let Some(credentials) =
                error_chain(&err).find_map(|c| c.downcast_ref::<CredentialsError>())
            else {
                return self.no_credentials(what, "none found");
            };
            return self.credentials_failure(what, credentials);
        }
        match &err {
            SdkError::TimeoutError(_) => {
                unreachable_error(what, &self.shown(service), "no answer in time")
            }
            SdkError::DispatchFailure(failure) => {
                let why = error_chain(&err)
                    .last()
                    .map(|c| one_line(&c.to_string()))
                    .unwrap_or_default();
                if failure.is_timeout() || failure.is_io() {
                    unreachable_error(what, &self.shown(service), &why)
                } else {
                    anyhow::anyhow!("{what}: the request could not be sent ({why})")
                }
            }
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                // A body the SDK could not parse (XML where JSON was expected: some
                // emulators and proxies) may still name the code.
                let code = match err.code() {
                    Some(code) if !code.is_empty() => code.to_string(),
                    _ => service
                        .raw()
                        .body()
                        .bytes()
                        .and_then(|body| known_code(&String::from_utf8_lossy(body)))
                        .unwrap_or_default()
                        .to_string(),
                };
                let message = err.message().unwrap_or("").to_string();
                let said = match (code.is_empty(), message.is_empty()) {
                    (false, false) => format!("{code}: {message}"),
                    (false, true) => code.clone(),
                    (true, false) => message,
                    (true, true) => format!("HTTP {status}"),
                };
                match refusal(&code, status) {
                    Refusal::Credentials => TfenvError::Auth {
                        message: format!(
                            "{what}: AWS refused the credentials ({said}); tfenv used {}",
                            self.credentials_used()
                        ),
                        hint: Some(self.refused_fix()),
                    }
                    .into(),
                    Refusal::Permission => TfenvError::Permission {
                        message: format!(
                            "permission denied: {what}: {said}; tfenv used {}",
                            self.credentials_used()
                        ),
                        hint: Some(needs.hint()),
                    }
                    .into(),
                    Refusal::Other => anyhow::anyhow!("{what}: {said}"),
                }
            }
            _ => {
                let why = error_chain(&err)
                    .last()
                    .map(|c| one_line(&c.to_string()))
                    .unwrap_or_default();
                anyhow::anyhow!("{what}: {why}")
            }
        }
    }
}

/// The IAM permission one AWS call needs, for the hint when AWS denies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Needs {
    /// `s3:PutObject`, `dynamodb:GetItem`, …
    pub action: &'static str,
    /// What it is needed on, as the hint says it (`` `arn:aws:s3:::b/k.tfenv/*` ``).
    pub on: String,
    /// The page of the docs that lists the permissions of this kind of call.
    pub docs: &'static str,
}

impl Needs {
    /// A call on the shared ledger (`<state key>.tfenv/`) or the state's versions: the
    /// permissions docs/team.md lists.
    pub fn ledger(action: &'static str, on: String) -> Needs {
        Needs {
            action,
            on,
            docs: "docs/team.md (Permissions)",
        }
    }

    /// A read of the state or its lock: the permissions docs/aws.md lists.
    pub fn backend(action: &'static str, on: String) -> Needs {
        Needs {
            action,
            on,
            docs: "docs/aws.md (Permissions)",
        }
    }

    fn service(&self) -> Service {
        if self.action.starts_with("dynamodb:") {
            Service::DynamoDb
        } else if self.action.starts_with("sts:") {
            Service::Sts
        } else {
            Service::S3
        }
    }

    fn hint(&self) -> String {
        // S3 answers a read of a missing object with AccessDenied, not NoSuchKey, to
        // whoever may not list the bucket.
        let missing = if self.action == "s3:GetObject" {
            " (without `s3:ListBucket` on the bucket, S3 also says AccessDenied for an object that does not exist)"
        } else {
            ""
        };
        format!(
            "AWS accepted the credentials but denied this call: allow `{}` on {} for that identity{missing} ({} or an SCP can deny it too); the permissions tfenv needs are in {}",
            self.action,
            self.on,
            if self.action.starts_with("s3:") {
                "a bucket policy"
            } else {
                "a resource policy"
            },
            self.docs
        )
    }
}

/// What a refusal from S3 or DynamoDB is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// The credentials are invalid, expired or unknown: fix the credentials.
    Credentials,
    /// The credentials are fine but may not make this call: grant a permission.
    Permission,
    /// Anything else (not found, throttled, a clock that is off, …).
    Other,
}

/// Classifies an error answer by its code and HTTP status: a credential code or a 401
/// is about the credentials; `AccessDenied` and its kin, or a 403 without a credential
/// code, about a permission.
fn refusal(code: &str, status: u16) -> Refusal {
    if is_credential_code(code) {
        Refusal::Credentials
    } else if is_permission_code(code) {
        Refusal::Permission
    } else if is_clock_code(code) {
        Refusal::Other
    } else if status == 401 {
        Refusal::Credentials
    } else if status == 403 {
        Refusal::Permission
    } else {
        Refusal::Other
    }
}

impl Aws {
    /// A service as a message names it: its endpoint when the backend config sets one,
    /// else the service and region.
    pub fn shown(&self, service: Service) -> String {
        let (name, endpoint) = match service {
            Service::S3 => ("S3", &self.settings.s3_endpoint),
            Service::DynamoDb => ("DynamoDB", &self.settings.dynamodb_endpoint),
            Service::Sts => ("STS", &self.settings.sts_endpoint),
        };
        match (endpoint, &self.settings.region) {
            (Some(url), _) => format!("{name} at `{url}`"),
            (None, Some(region)) => format!("{name} in `{region}`"),
            (None, None) => name.to_string(),
        }
    }

    /// What to change when AWS refused the credentials: those of the source that gave them.
    fn refused_fix(&self) -> String {
        match *self.used.lock().expect("credential source") {
            Some(FROM_ENVIRONMENT) => "fix or unset AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment; they win over the shared files".to_string(),
            _ => self.settings.credential_fix(),
        }
    }

    /// Credentials that could not be had: unreachable when the service handing them out
    /// (STS for a role, the container or instance endpoint, a `credential_process` that
    /// hangs) did not answer; else no credentials, with what to fix.
    fn credentials_failure(&self, what: &str, err: &CredentialsError) -> anyhow::Error {
        if let Some(why) = network_failure(err) {
            let who = match (&self.settings.assume_role, &self.settings.web_identity) {
                (None, None) => "the credential source".to_string(),
                _ => match &self.settings.sts_endpoint {
                    Some(url) => format!("STS at `{url}`"),
                    None => "STS".to_string(),
                },
            };
            return unreachable_error(&format!("{what}: getting AWS credentials"), &who, &why);
        }
        // The innermost causes say what was missing ("profile `x` was not defined").
        self.no_credentials(what, &credentials_detail(err))
    }

    /// No credentials from the configured source: what failed, why, and what to fix.
    fn no_credentials(&self, what: &str, detail: &str) -> anyhow::Error {
        TfenvError::Auth {
            message: format!(
                "{what}: no usable AWS credentials ({detail}); tfenv tried {}",
                self.settings.credential_source()
            ),
            hint: Some(self.settings.credential_fix()),
        }
        .into()
    }
}

/// What `check_credentials` found.
pub(crate) struct FoundCredentials {
    /// Where they came from, for people (never a secret).
    pub source: String,
    /// STS handed them out for a role (`assume_role`, `assume_role_with_web_identity`):
    /// AWS accepted what they were made from.
    pub from_sts: bool,
}

/// Resolves the credentials of `backend` exactly as its reads do (the same clients, the
/// same provider) and says where they came from, never the secret and at most the access
/// key's last 4 characters. Nothing is asked of S3 or DynamoDB: whether AWS accepts the
/// credentials is not checked (with a role to assume, STS is asked for it, as reads do).
pub(crate) async fn check_credentials(backend: &Backend) -> anyhow::Result<FoundCredentials> {
    let aws = clients(backend).await?;
    match aws.credentials.provide_credentials().await {
        Ok(credentials) => Ok(FoundCredentials {
            source: aws.credentials_found(&credentials),
            from_sts: aws.settings.assume_role.is_some() || aws.settings.web_identity.is_some(),
        }),
        Err(err) => Err(aws.credentials_failure("resolving AWS credentials", &err)),
    }
}

/// Why getting credentials failed when it was the network (a connection refused, a name
/// that does not resolve, no answer in time), in one line; `None` for anything else.
fn network_failure(err: &CredentialsError) -> Option<String> {
    if let CredentialsError::ProviderTimedOut(_) = err {
        return Some(err.to_string());
    }
    error_chain(err).find_map(|cause| {
        let connector = cause.downcast_ref::<aws_sdk_s3::error::ConnectorError>()?;
        (connector.is_io() || connector.is_timeout()).then(|| {
            error_chain(cause)
                .last()
                .map(|c| one_line(&c.to_string()))
                .unwrap_or_default()
        })
    })
}

/// Why a credentials provider failed, in one line: its causes (the SDK's own top line,
/// "the credential provider was not enabled", says nothing), or that top line alone.
fn credentials_detail(err: &CredentialsError) -> String {
    let mut causes: Vec<String> = Vec::new();
    for cause in error_chain(err).skip(1) {
        // A nested provider's error says no more than the top line.
        if cause.downcast_ref::<CredentialsError>().is_some() {
            continue;
        }
        // The chain's error lists each source on a line of its own, each prefixed with
        // the SDK's "not enabled" top line.
        let text = cause
            .to_string()
            .replace("the credential provider was not enabled: ", "")
            .replace("the credential provider was not enabled", "not set")
            .lines()
            .map(one_line)
            .filter(|l| !l.is_empty())
            .fold(String::new(), |all, line| {
                if all.is_empty() {
                    line
                } else if all.ends_with(':') {
                    format!("{all} {line}")
                } else {
                    format!("{all}; {line}")
                }
            });
        if !text.is_empty() && !causes.iter().any(|c| c.contains(&text)) {
            causes.push(text);
        }
    }
    if causes.is_empty() {
        match err {
            CredentialsError::CredentialsNotLoaded(_) => "none found".to_string(),
            _ => one_line(&err.to_string()),
        }
    } else {
        causes.join(": ")
    }
}

/// Which AWS service a call went to, to name it (and its endpoint) when it does not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Service {
    S3,
    DynamoDb,
    Sts,
}

pub(crate) fn unreachable_error(what: &str, who: &str, why: &str) -> anyhow::Error {
    TfenvError::Unreachable {
        message: format!("{what}: {who} did not answer ({why})"),
        hint: Some(
            "check the network, the endpoint and region in the backend config, and try again"
                .to_string(),
        ),
    }
    .into()
}

/// Error codes that mean "these credentials are not accepted": unknown, invalid,
/// expired, or signed wrong.
fn is_credential_code(code: &str) -> bool {
    matches!(
        code,
        "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidToken"
            | "TokenRefreshRequired"
            | "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "IncompleteSignature"
            | "IncompleteSignatureException"
            | "MissingAuthenticationToken"
            | "MissingAuthenticationTokenException"
            | "AuthFailure"
    )
}

/// Error codes that mean "these credentials may not do this": a missing permission, a
/// policy that denies it, or a bucket that allows nothing.
fn is_permission_code(code: &str) -> bool {
    matches!(
        code,
        "AccessDenied" | "AccessDeniedException" | "AllAccessDisabled" | "Forbidden"
    )
}

/// The first credential or permission code named in an error body that was not parsed.
fn known_code(body: &str) -> Option<&'static str> {
    const CODES: [&str; 11] = [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "AccessDeniedException",
        "AccessDenied",
        "AllAccessDisabled",
        "RequestTimeTooSkewed",
    ];
    CODES.into_iter().find(|code| body.contains(code))
}

/// A 403 about the request's time, not about who sent it.
fn is_clock_code(code: &str) -> bool {
    matches!(code, "RequestTimeTooSkewed" | "RequestExpired")
}

fn error_chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e| e.source())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
