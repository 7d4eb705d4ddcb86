//! End-to-end: the built tfenv against the real terraform (1.11.x on PATH and the
//! 1.0.3 that scripts/test.sh installs), local backend and s3 on a moto server.

#[path = "../support/mod.rs"]
mod support;

mod backups;
mod bootstrap;
mod bucket_versions;
mod bundles;
mod clean_tree;
mod cross_env;
mod deploy;
mod discovery;
mod doctor;
mod drift;
mod encrypted_bundles;
mod exec;
mod health;
mod hooks;
mod interrupts;
mod ledger;
mod local;
mod migrate;
mod locks;
mod pipeline;
mod plan_many;
mod policy;
mod promotion;
mod provider;
mod summary;
mod validate;
mod prompts;
mod published_plans;
mod s3;
mod s3_sdk;
mod snapshots;
