//! The naming rules of what bootstrap creates, checked before any call: a name the
//! cloud would refuse is refused here, naming the rule it breaks.

use crate::error::TfenvError;

fn refused(what: &str, name: &str, rule: &str, docs: &str) -> anyhow::Error {
    TfenvError::config(
        format!("`{name}` is not a valid {what} name: {rule}"),
        Some(format!(
            "change it in the environment's backend config; the rules are at {docs}"
        )),
    )
    .into()
}

fn lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Every character of `name` that `allowed` refuses, each once, in the order they
/// first appear (`` `T`, `_`, `S` ``): one run names them all, not one per try.
fn refused_chars(name: &str, allowed: impl Fn(char) -> bool) -> Option<String> {
    let mut seen: Vec<char> = Vec::new();
    for c in name.chars().filter(|c| !allowed(*c)) {
        if !seen.contains(&c) {
            seen.push(c);
        }
    }
    (!seen.is_empty()).then(|| {
        seen.iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

fn is_ip_address(name: &str) -> bool {
    name.parse::<std::net::Ipv4Addr>().is_ok()
}

/// S3 general purpose bucket names.
pub(super) fn s3_bucket(name: &str) -> anyhow::Result<()> {
    const DOCS: &str =
        "https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html";
    let rule = if !(3..=63).contains(&name.len()) {
        Some("it must be 3 to 63 characters long".to_string())
    } else if let Some(chars) = refused_chars(name, |c| lower_alnum(c) || c == '-' || c == '.') {
        Some(format!(
            "it may hold only lowercase letters, digits, dots and hyphens, not {chars}"
        ))
    } else if !name.starts_with(lower_alnum) || !name.ends_with(lower_alnum) {
        Some("it must begin and end with a lowercase letter or a digit".to_string())
    } else if name.contains("..") {
        Some("it must not hold two dots in a row".to_string())
    } else if is_ip_address(name) {
        Some("it must not look like an IP address".to_string())
    } else if let Some(prefix) = ["xn--", "sthree-", "amzn-s3-demo-"]
        .into_iter()
        .find(|p| name.starts_with(p))
    {
        Some(format!(
            "it must not begin with `{prefix}` (reserved by AWS)"
        ))
    } else {
        ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
            .into_iter()
            .find(|s| name.ends_with(s))
            .map(|suffix| format!("it must not end with `{suffix}` (reserved by AWS)"))
    };
    rule.map_or(Ok(()), |rule| Err(refused("S3 bucket", name, &rule, DOCS)))
}

/// DynamoDB table names.
pub(super) fn dynamodb_table(name: &str) -> anyhow::Result<()> {
    const DOCS: &str = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html";
    let rule = if !(3..=255).contains(&name.len()) {
        Some("it must be 3 to 255 characters long".to_string())
    } else {
        refused_chars(name, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
        })
        .map(|chars| {
            format!("it may hold only letters, digits, underscores, hyphens and dots, not {chars}")
        })
    };
    rule.map_or(Ok(()), |rule| {
        Err(refused("DynamoDB table", name, &rule, DOCS))
    })
}

/// Azure resource group names.
pub(super) fn resource_group(name: &str) -> anyhow::Result<()> {
    const DOCS: &str = "https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules#microsoftresources";
    let rule = if name.is_empty() || name.chars().count() > 90 {
        Some("it must be 1 to 90 characters long".to_string())
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '(' | ')')))
    {
        Some(format!(
            "it may hold only letters, digits, underscores, hyphens, dots and parentheses, not `{c}`"
        ))
    } else if name.ends_with('.') {
        Some("it must not end with a dot".to_string())
    } else {
        None
    };
    rule.map_or(Ok(()), |rule| {
        Err(refused("Azure resource group", name, &rule, DOCS))
    })
}

/// Azure storage account names: global, like a DNS label.
pub(super) fn storage_account(name: &str) -> anyhow::Result<()> {
    const DOCS: &str = "https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules#microsoftstorage";
    let rule = if !(3..=24).contains(&name.len()) {
        Some("it must be 3 to 24 characters long".to_string())
    } else {
        name.chars()
            .find(|c| !lower_alnum(*c))
            .map(|c| format!("it may hold only lowercase letters and digits, not `{c}`"))
    };
    rule.map_or(Ok(()), |rule| {
        Err(refused("Azure storage account", name, &rule, DOCS))
    })
}

/// Azure blob container names.
pub(super) fn container(name: &str) -> anyhow::Result<()> {
    const DOCS: &str = "https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata#container-names";
    let rule = if !(3..=63).contains(&name.len()) {
        Some("it must be 3 to 63 characters long".to_string())
    } else if let Some(c) = name.chars().find(|c| !(lower_alnum(*c) || *c == '-')) {
        Some(format!(
            "it may hold only lowercase letters, digits and hyphens, not `{c}`"
        ))
    } else if !name.starts_with(lower_alnum) || !name.ends_with(lower_alnum) {
        Some("it must begin and end with a lowercase letter or a digit".to_string())
    } else if name.contains("--") {
        Some("it must not hold two hyphens in a row".to_string())
    } else {
        None
    };
    rule.map_or(Ok(()), |rule| {
        Err(refused("Azure blob container", name, &rule, DOCS))
    })
}

/// Google Cloud Storage bucket names.
pub(super) fn gcs_bucket(name: &str) -> anyhow::Result<()> {
    const DOCS: &str = "https://cloud.google.com/storage/docs/buckets#naming";
    let longest = if name.contains('.') { 222 } else { 63 };
    let rule = if name.len() < 3 || name.len() > longest {
        Some(
            "it must be 3 to 63 characters long (up to 222 with dots, 63 between dots)".to_string(),
        )
    } else if let Some(c) = name
        .chars()
        .find(|c| !(lower_alnum(*c) || matches!(c, '-' | '_' | '.')))
    {
        Some(format!(
            "it may hold only lowercase letters, digits, hyphens, underscores and dots, not `{c}`"
        ))
    } else if !name.starts_with(lower_alnum) || !name.ends_with(lower_alnum) {
        Some("it must begin and end with a lowercase letter or a digit".to_string())
    } else if name
        .split('.')
        .any(|part| part.is_empty() || part.len() > 63)
    {
        Some("each part between dots must be 1 to 63 characters long".to_string())
    } else if is_ip_address(name) {
        Some("it must not look like an IP address".to_string())
    } else if name.starts_with("goog") {
        Some("it must not begin with `goog`".to_string())
    } else if name.contains("google") || name.contains("g00gle") {
        Some("it must not contain `google` or a look-alike".to_string())
    } else {
        None
    };
    rule.map_or(Ok(()), |rule| Err(refused("GCS bucket", name, &rule, DOCS)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(result: anyhow::Result<()>) -> String {
        format!("{:#}", result.expect_err("refused"))
    }

    #[test]
    fn s3_bucket_names_follow_the_aws_rules() {
        for good in ["tf-state", "my.state.bucket", "abc", &"a".repeat(63)] {
            s3_bucket(good).unwrap_or_else(|e| panic!("{good}: {e:#}"));
        }
        for (bad, says) in [
            ("ab", "3 to 63 characters"),
            (&"a".repeat(64), "3 to 63 characters"),
            ("Tf-State", "not `T`"),
            ("tf_state", "not `_`"),
            ("Tf_State", "dots and hyphens, not `T`, `_`, `S`"),
            ("-tfstate", "begin and end"),
            ("tfstate.", "begin and end"),
            ("tf..state", "two dots"),
            ("192.168.5.4", "IP address"),
            ("xn--state", "`xn--`"),
            ("state-s3alias", "`-s3alias`"),
        ] {
            let text = rule(s3_bucket(bad));
            assert!(text.contains(says), "{bad}: {text}");
            assert!(text.contains(&format!("`{bad}` is not a valid S3 bucket name")));
        }
    }

    #[test]
    fn dynamodb_table_names_follow_the_aws_rules() {
        dynamodb_table("terraform-locks_v1.0").unwrap();
        assert!(rule(dynamodb_table("ab")).contains("3 to 255"));
        assert!(rule(dynamodb_table("tf locks")).contains("not ` `"));
        assert!(rule(dynamodb_table("tf locks/état")).contains("not ` `, `/`, `é`"));
    }

    #[test]
    fn azure_names_follow_the_azure_rules() {
        resource_group("rg-tfstate_(prod).1").unwrap();
        assert!(rule(resource_group("rg.")).contains("end with a dot"));
        assert!(rule(resource_group("rg/x")).contains("not `/`"));
        storage_account("tfstate123").unwrap();
        assert!(rule(storage_account("tf-state")).contains("not `-`"));
        assert!(rule(storage_account("TFSTATE")).contains("not `T`"));
        assert!(rule(storage_account("ab")).contains("3 to 24"));
        container("tfstate-prod").unwrap();
        assert!(rule(container("tf--state")).contains("two hyphens"));
        assert!(rule(container("-tfstate")).contains("begin and end"));
        assert!(rule(container("TFstate")).contains("not `T`"));
    }

    #[test]
    fn gcs_bucket_names_follow_the_google_rules() {
        for good in ["tf-state", "tf_state", "a.b.c", "tf-state-2026"] {
            gcs_bucket(good).unwrap_or_else(|e| panic!("{good}: {e:#}"));
        }
        for (bad, says) in [
            ("ab", "3 to 63"),
            ("TF-state", "not `T`"),
            ("_state", "begin and end"),
            ("a..b", "between dots"),
            ("10.0.0.1", "IP address"),
            ("goog-state", "`goog`"),
            ("my-google-state", "`google`"),
        ] {
            let text = rule(gcs_bucket(bad));
            assert!(text.contains(says), "{bad}: {text}");
        }
    }
}
