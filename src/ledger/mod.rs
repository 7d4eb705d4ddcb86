//! The ledger of an environment — its history and backups — as this machine's
//! `state/<env>/` and, with `[project] ledger = "backend"`, the shared copy beside the
//! state in the backend (`<state key>.tfenv/`, DESIGN.md §12). Readers get both, merged,
//! each entry marked with where it lives.

pub mod promotion;

use std::sync::Arc;

use serde::Serialize;

use crate::artifacts::history::{self, HistoryRecord};
use crate::backend::Backend;
use crate::backend::store::Store;
use crate::process::Runner;
use crate::project::{Environment, LedgerMode, Project};

/// Where an entry of the ledger lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Where {
    Local,
    Shared,
    Both,
}

/// One entry and where it lives.
#[derive(Clone, Debug)]
pub struct Entry<T> {
    pub record: T,
    pub place: Where,
}

/// Entries of both sides, oldest first, and what could not be read.
#[derive(Clone, Debug, Default)]
pub struct Merged<T> {
    pub entries: Vec<Entry<T>>,
    pub warnings: Vec<String>,
}

/// One environment's ledger.
pub struct EnvLedger<'a> {
    pub env: &'a Environment,
    /// The shared side: `None` with `ledger = "local"`, or for a backend without a store.
    pub shared: Option<Store>,
    pub mode: LedgerMode,
}

impl<'a> EnvLedger<'a> {
    pub fn of(
        project: &Project,
        env: &'a Environment,
        backend: &Backend,
        runner: Arc<dyn Runner>,
    ) -> EnvLedger<'a> {
        let shared = match project.ledger {
            LedgerMode::Backend => backend.store(runner),
            LedgerMode::Local => None,
        };
        EnvLedger {
            env,
            shared,
            mode: project.ledger,
        }
    }

    /// Every history record, local and shared, oldest first.
    // TODO(issue 13): read and merge the shared side.
    pub async fn history(&self) -> anyhow::Result<Merged<HistoryRecord>> {
        let local = history::read(&self.env.artifacts_dir)?;
        Ok(Merged {
            entries: local
                .records
                .into_iter()
                .map(|record| Entry {
                    record,
                    place: Where::Local,
                })
                .collect(),
            warnings: local.warnings,
        })
    }
}
