//! The built tfenv binary driven with assert_cmd. Fake `terraform` scripts stand in
//! only where a fault must be injected that the real one cannot produce on demand.

#[path = "../support/mod.rs"]
mod support;

mod artifacts;
mod bootstrap;
mod bootstrap_clouds;
mod clouds;
mod completion;
mod deploy;
mod discovery;
mod doctor;
mod drift;
mod envs;
mod exec;
mod faults;
mod health;
mod hooks;
mod locks;
mod manual;
mod meta;
mod migrate;
mod pipeline;
mod plan_many;
mod policy;
mod progress;
mod promotion;
mod snapshots;
mod status;
mod summary;
mod validate;
