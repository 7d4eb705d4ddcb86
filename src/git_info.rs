//! The commit a run was made from, as history records it. A leaf: `git` finds it,
//! `artifacts` records it, and neither needs the other for it. Uses nothing of tfenv's.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GitInfo {
    pub commit: String,
    pub dirty: bool,
}
