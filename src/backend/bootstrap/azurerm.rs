//! azurerm: the resource group (only with `--location`), the storage account and the
//! container, through `az`.

use super::{Options, Survey};
use crate::backend::Backend;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Op {}

pub(super) async fn survey_group(_backend: &Backend, _options: &Options) -> anyhow::Result<Survey> {
    anyhow::bail!("azurerm bootstrap is not built yet")
}

pub(super) async fn survey_account(
    _backend: &Backend,
    _parent_missing: bool,
    _options: &Options,
) -> anyhow::Result<Survey> {
    anyhow::bail!("azurerm bootstrap is not built yet")
}

pub(super) async fn survey_container(
    _backend: &Backend,
    _parent_missing: bool,
    _options: &Options,
) -> anyhow::Result<Survey> {
    anyhow::bail!("azurerm bootstrap is not built yet")
}

pub(super) async fn apply(_backend: &Backend, op: &Op, _options: &Options) -> anyhow::Result<()> {
    match *op {}
}
