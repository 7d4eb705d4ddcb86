//! The backend config → SDK settings mapping, one test per setting.

use serde_json::json;

use super::*;

fn s3(config: Value) -> Backend {
    crate::backend::tests::backend("s3", config, None)
}

/// The settings of an s3 backend with `config`, the environment holding only `env`.
fn settings_with(config: Value, env: &[(&str, &str)]) -> anyhow::Result<AwsSettings> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    AwsSettings::from_backend(&s3(config), &|name| env.get(name).cloned())
}

fn settings(config: Value) -> AwsSettings {
    match settings_with(config, &[]) {
        Ok(settings) => settings,
        Err(err) => panic!("refused: {err:#}"),
    }
}

/// The config error `config` is refused with, and its hint.
fn refused(config: Value, env: &[(&str, &str)]) -> (String, String) {
    match settings_with(config, env) {
        Ok(_) => panic!("accepted"),
        Err(err) => (
            format!("{err:#}"),
            crate::error::hint_for(&err).unwrap_or("").to_string(),
        ),
    }
}

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "FwoGZXIvYXdzEXAMPLEsessiontoken";

/// `text` shows none of the secrets these tests put in configs.
fn assert_no_secret(text: &str) {
    for secret in [SECRET, TOKEN, "AKIAIOSFODNN7", "inline-web-token"] {
        assert!(!text.contains(secret), "`{secret}` shown in: {text}");
    }
}

#[test]
fn region_comes_from_the_backend_config() {
    let b = crate::backend::tests::backend("s3", serde_json::json!({"region": "eu-west-1"}), None);
    let s = AwsSettings::from_backend(&b, &|_| None).unwrap();
    assert_eq!(s.region.as_deref(), Some("eu-west-1"));
    assert_eq!(settings(json!({})).region, None);
    assert_eq!(settings(json!({"region": ""})).region, None);
}

#[test]
fn profile_in_the_backend_config_wins_over_aws_profile() {
    let s = settings_with(json!({"profile": "ops"}), &[("AWS_PROFILE", "dev")]).unwrap();
    assert_eq!(
        s.profile,
        Some(Profile {
            name: "ops".into(),
            from_config: true
        })
    );
}

#[test]
fn aws_profile_names_the_profile_when_the_backend_config_does_not() {
    let s = settings_with(json!({}), &[("AWS_PROFILE", "dev")]).unwrap();
    assert_eq!(
        s.profile,
        Some(Profile {
            name: "dev".into(),
            from_config: false
        })
    );
    assert_eq!(
        settings_with(json!({}), &[("AWS_PROFILE", "")])
            .unwrap()
            .profile,
        None
    );
    assert_eq!(settings(json!({})).profile, None);
}

#[test]
fn access_key_secret_key_and_token_are_the_static_credentials() {
    let s = settings(json!({"access_key": "AKIAIOSFODNN7EXAMPLE", "secret_key": SECRET}));
    assert_eq!(
        s.keys,
        Some(("AKIAIOSFODNN7EXAMPLE".into(), SECRET.into(), None))
    );
    let s = settings(
        json!({"access_key": "AKIAIOSFODNN7EXAMPLE", "secret_key": SECRET, "token": TOKEN}),
    );
    assert_eq!(s.keys.unwrap().2.as_deref(), Some(TOKEN));
    assert!(settings(json!({})).keys.is_none());
}

#[test]
fn only_one_of_access_key_and_secret_key_is_a_config_error_that_shows_neither() {
    for config in [
        json!({"access_key": "AKIAIOSFODNN7EXAMPLE"}),
        json!({"secret_key": SECRET}),
    ] {
        let (message, hint) = refused(config, &[]);
        assert!(
            message.contains("only one of `access_key` and `secret_key`"),
            "{message}"
        );
        assert!(hint.contains("set both"), "{hint}");
        assert_no_secret(&message);
    }
}

#[test]
fn a_token_without_access_key_and_secret_key_is_a_config_error() {
    let (message, hint) = refused(json!({"token": TOKEN}), &[]);
    assert!(
        message.contains("`token` without `access_key` and `secret_key`"),
        "{message}"
    );
    assert!(hint.contains("remove `token`"), "{hint}");
    assert_no_secret(&message);
}

#[test]
fn shared_credentials_files_is_a_list_or_the_older_single_file() {
    let s = settings(json!({"shared_credentials_files": ["/a/credentials", "/b/credentials"]}));
    assert_eq!(
        s.credentials_files,
        vec![
            PathBuf::from("/a/credentials"),
            PathBuf::from("/b/credentials")
        ]
    );
    let s = settings(json!({"shared_credentials_file": "/old/credentials"}));
    assert_eq!(s.credentials_files, vec![PathBuf::from("/old/credentials")]);
    // A single string where a list is expected, and the list winning over the old name.
    let s = settings(json!({"shared_credentials_files": "/one/credentials"}));
    assert_eq!(s.credentials_files, vec![PathBuf::from("/one/credentials")]);
    let s = settings(json!({
        "shared_credentials_files": ["/new/credentials"],
        "shared_credentials_file": "/old/credentials"
    }));
    assert_eq!(s.credentials_files, vec![PathBuf::from("/new/credentials")]);
    assert!(settings(json!({})).credentials_files.is_empty());
}

#[test]
fn shared_config_files_lists_the_config_files() {
    let s = settings(json!({"shared_config_files": ["/a/config", "/b/config"]}));
    assert_eq!(
        s.config_files,
        vec![PathBuf::from("/a/config"), PathBuf::from("/b/config")]
    );
    assert!(s.credentials_files.is_empty());
}

#[test]
fn shared_files_starting_with_tilde_slash_are_under_home() {
    let s = settings_with(
        json!({
            "shared_credentials_files": ["~/.aws/team-credentials"],
            "shared_config_files": ["~/cfg", "/abs/config", "~other/config"]
        }),
        &[("HOME", "/home/alice")],
    )
    .unwrap();
    assert_eq!(
        s.credentials_files,
        vec![PathBuf::from("/home/alice/.aws/team-credentials")]
    );
    assert_eq!(
        s.config_files,
        vec![
            PathBuf::from("/home/alice/cfg"),
            PathBuf::from("/abs/config"),
            PathBuf::from("~other/config")
        ]
    );
    let s = settings_with(
        json!({"shared_credentials_file": "~/creds"}),
        &[("HOME", "/home/bob")],
    )
    .unwrap();
    assert_eq!(s.credentials_files, vec![PathBuf::from("/home/bob/creds")]);
}

#[test]
fn the_assume_role_block_names_the_role_and_its_session() {
    let s = settings(json!({"assume_role": {
        "role_arn": "arn:aws:iam::123456789012:role/deploy",
        "session_name": "ci",
        "external_id": "ext-1",
        "duration": "1h30m",
        "policy": "{\"Version\":\"2012-10-17\"}"
    }}));
    assert_eq!(
        s.assume_role,
        Some(AssumeRole {
            role_arn: "arn:aws:iam::123456789012:role/deploy".into(),
            session_name: Some("ci".into()),
            external_id: Some("ext-1".into()),
            duration: Some(Duration::from_secs(5400)),
            policy: Some("{\"Version\":\"2012-10-17\"}".into()),
        })
    );
    let s = settings(json!({"assume_role": {"role_arn": "arn:aws:iam::1:role/r"}}));
    let role = s.assume_role.unwrap();
    assert_eq!(
        (role.session_name, role.external_id, role.duration),
        (None, None, None)
    );
    assert!(settings(json!({})).assume_role.is_none());
}

#[test]
fn the_pre_1_6_flat_role_arn_settings_assume_the_role() {
    let s = settings(json!({
        "role_arn": "arn:aws:iam::123456789012:role/old",
        "session_name": "legacy",
        "external_id": "ext-2",
        "assume_role_duration_seconds": 900,
        "assume_role_policy": "{}"
    }));
    assert_eq!(
        s.assume_role,
        Some(AssumeRole {
            role_arn: "arn:aws:iam::123456789012:role/old".into(),
            session_name: Some("legacy".into()),
            external_id: Some("ext-2".into()),
            duration: Some(Duration::from_secs(900)),
            policy: Some("{}".into()),
        })
    );
    // The block wins over the old names.
    let s = settings(json!({
        "assume_role": {"role_arn": "arn:aws:iam::1:role/new"},
        "role_arn": "arn:aws:iam::1:role/old"
    }));
    assert_eq!(s.assume_role.unwrap().role_arn, "arn:aws:iam::1:role/new");
}

#[test]
fn an_assume_role_duration_that_is_not_a_duration_is_a_config_error() {
    let (message, _) = refused(
        json!({"assume_role": {"role_arn": "arn:aws:iam::1:role/r", "duration": "soon"}}),
        &[],
    );
    assert!(
        message.contains("`assume_role.duration` is `soon`, not a duration"),
        "{message}"
    );
    let (message, _) = refused(
        json!({"role_arn": "arn:aws:iam::1:role/r", "assume_role_duration_seconds": "x"}),
        &[],
    );
    assert!(
        message.contains("`assume_role_duration_seconds`"),
        "{message}"
    );
}

#[test]
fn assume_role_with_web_identity_takes_a_token_file_or_an_inline_token() {
    let s = settings_with(
        json!({"assume_role_with_web_identity": {
            "role_arn": "arn:aws:iam::1:role/gha",
            "session_name": "gha",
            "web_identity_token_file": "~/token"
        }}),
        &[("HOME", "/home/ci")],
    )
    .unwrap();
    assert_eq!(
        s.web_identity,
        Some(WebIdentity {
            role_arn: "arn:aws:iam::1:role/gha".into(),
            session_name: Some("gha".into()),
            token_file: Some(PathBuf::from("/home/ci/token")),
            token: None,
        })
    );
    let s = settings(json!({"assume_role_with_web_identity": {
        "role_arn": "arn:aws:iam::1:role/gha",
        "web_identity_token": "inline-web-token"
    }}));
    let web = s.web_identity.unwrap();
    assert_eq!(web.token.as_deref(), Some("inline-web-token"));
    assert_eq!(web.token_file, None);
}

#[test]
fn assume_role_with_web_identity_falls_back_to_aws_role_arn_and_the_token_file_variable() {
    let s = settings_with(
        json!({"assume_role_with_web_identity": {}}),
        &[
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/env"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
        ],
    )
    .unwrap();
    let web = s.web_identity.unwrap();
    assert_eq!(web.role_arn, "arn:aws:iam::1:role/env");
    assert_eq!(web.token_file, Some(PathBuf::from("/var/run/token")));
    // Without the block those variables are the default chain's business, not a setting.
    assert!(
        settings_with(json!({}), &[("AWS_ROLE_ARN", "arn:aws:iam::1:role/env")])
            .unwrap()
            .web_identity
            .is_none()
    );
}

#[test]
fn assume_role_with_web_identity_without_a_token_or_a_role_is_a_config_error() {
    let (message, hint) = refused(
        json!({"assume_role_with_web_identity": {"role_arn": "arn:aws:iam::1:role/gha"}}),
        &[],
    );
    assert!(
        message.contains("names neither `web_identity_token` nor `web_identity_token_file`"),
        "{message}"
    );
    assert!(hint.contains("AWS_WEB_IDENTITY_TOKEN_FILE"), "{hint}");
    let (message, hint) = refused(
        json!({"assume_role_with_web_identity": {"web_identity_token_file": "/t"}}),
        &[],
    );
    assert!(message.contains("has no `role_arn`"), "{message}");
    assert!(hint.contains("AWS_ROLE_ARN"), "{hint}");
}

#[test]
fn the_endpoints_block_and_the_pre_1_6_endpoint_names_new_winning() {
    let s = settings(json!({"endpoints": {
        "s3": "http://127.0.0.1:5000",
        "dynamodb": "http://127.0.0.1:5001",
        "sts": "http://127.0.0.1:5002"
    }}));
    assert_eq!(s.s3_endpoint.as_deref(), Some("http://127.0.0.1:5000"));
    assert_eq!(
        s.dynamodb_endpoint.as_deref(),
        Some("http://127.0.0.1:5001")
    );
    assert_eq!(s.sts_endpoint.as_deref(), Some("http://127.0.0.1:5002"));
    let s = settings(json!({
        "endpoint": "http://old:1",
        "dynamodb_endpoint": "http://old:2",
        "sts_endpoint": "http://old:3"
    }));
    assert_eq!(s.s3_endpoint.as_deref(), Some("http://old:1"));
    assert_eq!(s.dynamodb_endpoint.as_deref(), Some("http://old:2"));
    assert_eq!(s.sts_endpoint.as_deref(), Some("http://old:3"));
    let s = settings(json!({
        "endpoints": {"s3": "http://new:1", "dynamodb": "http://new:2", "sts": "http://new:3"},
        "endpoint": "http://old:1",
        "dynamodb_endpoint": "http://old:2",
        "sts_endpoint": "http://old:3"
    }));
    assert_eq!(s.s3_endpoint.as_deref(), Some("http://new:1"));
    assert_eq!(s.dynamodb_endpoint.as_deref(), Some("http://new:2"));
    assert_eq!(s.sts_endpoint.as_deref(), Some("http://new:3"));
    // One service in the block, the others by their old names.
    let s =
        settings(json!({"endpoints": {"s3": "http://new:1"}, "dynamodb_endpoint": "http://old:2"}));
    assert_eq!(s.s3_endpoint.as_deref(), Some("http://new:1"));
    assert_eq!(s.dynamodb_endpoint.as_deref(), Some("http://old:2"));
    assert_eq!(s.sts_endpoint, None);
}

#[test]
fn use_path_style_and_the_older_force_path_style_address_the_bucket_by_path() {
    assert!(!settings(json!({})).path_style);
    assert!(settings(json!({"use_path_style": true})).path_style);
    assert!(settings(json!({"use_path_style": "true"})).path_style);
    assert!(settings(json!({"force_path_style": true})).path_style);
    assert!(!settings(json!({"use_path_style": false})).path_style);
}

#[test]
fn skip_metadata_api_check_leaves_out_the_instance_metadata_service() {
    assert!(!settings(json!({})).skip_metadata);
    assert!(settings(json!({"skip_metadata_api_check": true})).skip_metadata);
    assert!(!settings(json!({"skip_metadata_api_check": false})).skip_metadata);
}

#[test]
fn max_retries_sets_the_attempts_capped_at_the_maximum() {
    assert_eq!(settings(json!({})).max_attempts, DEFAULT_ATTEMPTS);
    assert_eq!(settings(json!({"max_retries": 0})).max_attempts, 1);
    assert_eq!(settings(json!({"max_retries": 2})).max_attempts, 3);
    assert_eq!(settings(json!({"max_retries": "4"})).max_attempts, 5);
    assert_eq!(
        settings(json!({"max_retries": 25})).max_attempts,
        MAX_ATTEMPTS
    );
    let (message, _) = refused(json!({"max_retries": "many"}), &[]);
    assert!(
        message.contains("`max_retries` is `many`, not a number"),
        "{message}"
    );
}

#[test]
fn use_fips_endpoint_and_use_dualstack_endpoint_are_passed_on() {
    let s = settings(json!({}));
    assert!(!s.use_fips && !s.use_dualstack);
    let s = settings(json!({"use_fips_endpoint": true, "use_dualstack_endpoint": true}));
    assert!(s.use_fips && s.use_dualstack);
}

#[test]
fn sts_region_is_the_region_roles_are_assumed_in() {
    let s = settings(json!({"region": "eu-west-1", "sts_region": "us-east-1"}));
    assert_eq!(s.sts_region.as_deref(), Some("us-east-1"));
    assert_eq!(s.region.as_deref(), Some("eu-west-1"));
    assert_eq!(settings(json!({})).sts_region, None);
}

#[test]
fn credentials_from_backend_keys_are_named_by_setting_never_shown() {
    let s = settings(
        json!({"access_key": "AKIAIOSFODNN7EXAMPLE", "secret_key": SECRET, "token": TOKEN}),
    );
    let (source, fix) = (s.credential_source(), s.credential_fix());
    assert_eq!(source, "`access_key` / `secret_key` in the backend config");
    assert!(fix.contains("fix `access_key` / `secret_key`"), "{fix}");
    assert_no_secret(&source);
    assert_no_secret(&fix);
}

#[test]
fn a_profile_is_named_with_who_named_it_and_the_files_it_is_read_from() {
    let s = settings_with(
        json!({"profile": "ops", "shared_credentials_files": ["/team/credentials"]}),
        &[("AWS_CONFIG_FILE", "/etc/aws/config")],
    )
    .unwrap();
    assert_eq!(
        s.credential_source(),
        "profile `ops` (`profile` in the backend config) in `/team/credentials` (`shared_credentials_files`) and `/etc/aws/config` (AWS_CONFIG_FILE)"
    );
    assert!(
        s.credential_fix().starts_with(
            "fix profile `ops` in `/team/credentials` (`shared_credentials_files`) and `/etc/aws/config` (AWS_CONFIG_FILE), or `profile` in the backend config"
        ),
        "{}",
        s.credential_fix()
    );

    let s = settings_with(json!({}), &[("AWS_PROFILE", "dev")]).unwrap();
    assert_eq!(
        s.credential_source(),
        "profile `dev` (AWS_PROFILE) in `~/.aws/credentials` and `~/.aws/config`"
    );
    assert!(
        s.credential_fix().contains("or set AWS_PROFILE to another"),
        "{}",
        s.credential_fix()
    );
}

#[test]
fn the_default_chain_names_its_sources_and_the_variables_to_set() {
    let s = settings_with(
        json!({}),
        &[("AWS_SHARED_CREDENTIALS_FILE", "/ci/credentials")],
    )
    .unwrap();
    let source = s.credential_source();
    assert!(source.starts_with("the AWS default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the default profile of `/ci/credentials` (AWS_SHARED_CREDENTIALS_FILE) and `~/.aws/config`"), "{source}");
    assert!(
        source.contains("the container or instance role"),
        "{source}"
    );
    let fix = s.credential_fix();
    assert!(
        fix.starts_with("export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, set AWS_PROFILE"),
        "{fix}"
    );
    assert!(fix.contains("`/ci/credentials`"), "{fix}");
    let s = settings(json!({"skip_metadata_api_check": true}));
    assert!(
        s.credential_source()
            .contains("not the instance metadata service: `skip_metadata_api_check`"),
        "{}",
        s.credential_source()
    );
}

#[test]
fn an_assumed_role_is_named_after_the_credentials_it_is_assumed_with() {
    let s = settings(json!({
        "profile": "ops",
        "assume_role": {"role_arn": "arn:aws:iam::1:role/deploy", "external_id": "ext"}
    }));
    let source = s.credential_source();
    assert!(source.starts_with("profile `ops`"), "{source}");
    assert!(
        source.ends_with(", then assuming `arn:aws:iam::1:role/deploy`"),
        "{source}"
    );
    assert!(
        s.credential_fix()
            .contains("check that they may assume `arn:aws:iam::1:role/deploy`"),
        "{}",
        s.credential_fix()
    );
}

#[test]
fn web_identity_is_named_by_role_and_token_file_never_by_the_token() {
    let s = settings(json!({"assume_role_with_web_identity": {
        "role_arn": "arn:aws:iam::1:role/gha",
        "web_identity_token": "inline-web-token"
    }}));
    let (source, fix) = (s.credential_source(), s.credential_fix());
    assert_eq!(
        source,
        "web identity for `arn:aws:iam::1:role/gha` (`assume_role_with_web_identity`, the backend config's `web_identity_token`)"
    );
    assert!(fix.contains("fix `assume_role_with_web_identity`"), "{fix}");
    assert_no_secret(&source);
    assert_no_secret(&fix);

    // Web identity first, then the role on top (terraform's order).
    let s = settings(json!({
        "assume_role_with_web_identity": {
            "role_arn": "arn:aws:iam::1:role/gha",
            "web_identity_token_file": "/var/run/token"
        },
        "assume_role": {"role_arn": "arn:aws:iam::2:role/deploy"}
    }));
    assert_eq!(
        s.credential_source(),
        "web identity for `arn:aws:iam::1:role/gha` (`assume_role_with_web_identity`, the token in `/var/run/token`), then assuming `arn:aws:iam::2:role/deploy`"
    );
}

#[test]
fn backends_that_differ_in_any_setting_get_their_own_clients() {
    let base = json!({"region": "eu-west-1", "bucket": "b"});
    let key = |extra: Value| {
        let mut config = base.clone();
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        settings(config).cache_key()
    };
    let plain = key(json!({}));
    assert_eq!(plain, key(json!({"key": "other.tfstate"})));
    for extra in [
        json!({"profile": "ops"}),
        json!({"access_key": "a", "secret_key": "b"}),
        json!({"endpoints": {"s3": "http://x"}}),
        json!({"use_path_style": true}),
        json!({"max_retries": 1}),
        json!({"assume_role": {"role_arn": "arn:aws:iam::1:role/r"}}),
        json!({"sts_region": "us-east-1"}),
    ] {
        assert_ne!(plain, key(extra.clone()), "{extra}");
    }
}

#[tokio::test]
async fn check_credentials_names_the_backend_keys_and_at_most_their_last_4_characters() {
    let backend = s3(json!({
        "region": "eu-west-1",
        "access_key": "AKIAIOSFODNN7EXAMPLE",
        "secret_key": SECRET,
        "token": TOKEN
    }));
    let found = match check_credentials(&backend).await {
        Ok(found) => found,
        Err(err) => panic!("{err:#}"),
    };
    assert_eq!(
        found.source,
        "`access_key` / `secret_key` in the backend config (access key `…MPLE`)"
    );
    assert!(!found.from_sts);
    assert_no_secret(&found.source);
}

#[test]
fn refused_credentials_and_denied_calls_are_told_apart() {
    for code in [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
    ] {
        assert_eq!(refusal(code, 403), Refusal::Credentials, "{code}");
        assert_eq!(refusal(code, 400), Refusal::Credentials, "{code}");
    }
    for code in [
        "AccessDenied",
        "AccessDeniedException",
        "AllAccessDisabled",
        "Forbidden",
    ] {
        assert_eq!(refusal(code, 403), Refusal::Permission, "{code}");
        assert_eq!(refusal(code, 400), Refusal::Permission, "{code}");
    }
    // A 403 without a credential code (a proxy, a HEAD without a body) is a permission;
    // a 401 without a code, the credentials.
    assert_eq!(refusal("", 403), Refusal::Permission);
    assert_eq!(refusal("", 401), Refusal::Credentials);
    // A clock that is off is neither: its own message says so.
    assert_eq!(refusal("RequestTimeTooSkewed", 403), Refusal::Other);
    assert_eq!(refusal("NoSuchBucket", 404), Refusal::Other);
    assert_eq!(refusal("", 500), Refusal::Other);
    // A body the SDK could not parse still names its code.
    assert_eq!(
        known_code(
            "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code></Error></ErrorResponse>"
        ),
        Some("SignatureDoesNotMatch")
    );
    assert_eq!(
        known_code("<Code>AccessDenied</Code>"),
        Some("AccessDenied")
    );
    assert_eq!(known_code("{}"), None);
}

#[test]
fn a_denied_call_names_the_action_the_resource_and_the_docs() {
    let ledger = Needs::ledger("s3:PutObject", "`arn:aws:s3:::b/k.tfenv/*`".to_string());
    let hint = ledger.hint();
    assert!(
        hint.contains("allow `s3:PutObject` on `arn:aws:s3:::b/k.tfenv/*`")
            && hint.contains("docs/team.md"),
        "{hint}"
    );
    assert_eq!(ledger.service(), Service::S3);
    assert!(!hint.contains("does not exist"), "{hint}");
    // A read denied may be a missing object to an identity that may not list.
    let read = Needs::backend("s3:GetObject", "`arn:aws:s3:::b/k`".to_string()).hint();
    assert!(
        read.contains("without `s3:ListBucket` on the bucket, S3 also says AccessDenied for an object that does not exist"),
        "{read}"
    );
    let lock = Needs::backend("dynamodb:GetItem", "the DynamoDB table `t`".to_string());
    assert!(lock.hint().contains("docs/aws.md"), "{}", lock.hint());
    assert_eq!(lock.service(), Service::DynamoDb);
}
