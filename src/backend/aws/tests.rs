//! The backend config → SDK settings mapping, one test per setting.

use super::*;

#[test]
fn region_comes_from_the_backend_config() {
    let b = crate::backend::tests::backend("s3", serde_json::json!({"region": "eu-west-1"}), None);
    let s = AwsSettings::from_backend(&b, &|_| None).unwrap();
    assert_eq!(s.region.as_deref(), Some("eu-west-1"));
}
