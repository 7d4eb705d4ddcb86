//! gcs: the bucket, through `gcloud`.

use super::{Options, Survey};
use crate::backend::Backend;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Op {}

pub(super) async fn survey_bucket(
    _backend: &Backend,
    _options: &Options,
) -> anyhow::Result<Survey> {
    anyhow::bail!("gcs bootstrap is not built yet")
}

pub(super) async fn apply(_backend: &Backend, op: &Op, _options: &Options) -> anyhow::Result<()> {
    match *op {}
}
