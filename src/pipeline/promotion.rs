//! The promotion gate (DESIGN.md §12): a deploy of an environment with `promote_from`
//! goes on only at a commit that environment's ledger shows deployed successfully from a
//! clean tree. Checked after the commit is known, before anything is planned or backed
//! up; `--skip-promotion-check` skips it and the reason is recorded.

use anyhow::Context as _;

use super::{Apply, Bundle, Run};
use crate::artifacts::history::{HistoryRecord, PromotedFrom};
use crate::error::TfenvError;
use crate::ledger::promotion::{self, Evidence};
use crate::ledger::{Entry, EnvLedger, Where};
use crate::project::{Environment, LedgerMode};

/// The commit a deploy would put in place: HEAD, or the plan bundle's.
pub(super) enum Deploying<'a> {
    Head,
    Bundle(&'a Bundle),
}

const HINT_SKIP: &str =
    "--skip-promotion-check \"<reason>\" to deploy anyway (the reason is kept in history)";

/// Refuses (exit 5) a deploy of a commit `promote_from` has not deployed, or records
/// which deploy let it through, or that and why the check was skipped.
pub(super) async fn check(
    run: &mut Run<'_>,
    apply: &Apply,
    deploying: Deploying<'_>,
) -> anyhow::Result<()> {
    let env = run.env;
    let p = &run.ctx.printer;
    let Some(source_name) = &env.promote_from else {
        if apply.skip_promotion_check.is_some() {
            run.recorded.warn(
                p,
                format!(
                    "`{}` has no promote_from in tfenv.toml: --skip-promotion-check has nothing to skip",
                    env.name
                ),
            );
        }
        return Ok(());
    };
    if let Some(reason) = &apply.skip_promotion_check {
        run.recorded.warn(
            p,
            format!(
                "the promotion check of `{}` (promote_from = `{source_name}`) was skipped: {reason}; history records it",
                env.name
            ),
        );
        run.recorded.ledger.promotion_check_skipped = Some(reason.clone());
        return Ok(());
    }
    let (commit, what) = commit_of(run, &deploying, source_name)?;
    let source = run
        .project
        .environments
        .iter()
        .find(|e| &e.name == source_name)
        .with_context(|| format!("promote_from `{source_name}` is not an environment"))?;
    // A backend that cannot be resolved leaves this machine's history, said: the check
    // then refuses rather than trusts what it cannot read.
    let (ledger, unresolved) = EnvLedger::resolve(run.project, source, run.ctx.runner.clone());
    let ledger = ledger.with_timeout(run.ledger_timeout);
    // What cannot be read is refused like what is not there: the gate never trusts a
    // history it cannot see.
    let merged = ledger.history().await.map_err(|err| TfenvError::Refused {
        message: format!(
            "promotion check failed: cannot read the history of `{source_name}` on this machine ({err:#}): `{}` deploys only commits `{source_name}` deployed",
            env.name
        ),
        hint: Some(format!(
            "fix or move aside `{}`, or pass {HINT_SKIP}",
            run.project.show(&source.artifacts_dir.join("history.jsonl"))
        )),
    })?;
    // Said on stderr and kept for the run's JSON document (`warnings`).
    for warning in unresolved.iter().chain(&merged.warnings) {
        run.recorded.warn(p, warning.clone());
    }
    // Only the source environment's own records are in it: the ledger leaves out (and
    // warns of) any that name another environment.
    let entries = merged.entries;
    let evidence = promotion::evidence(&entries, &commit);
    if let Some(found) = evidence.passed {
        p.progress(&format!(
            "{}: promotion check passed: `{source_name}` deployed {what} `{}` {}",
            env.name,
            short(&commit),
            when_who(found)
        ));
        run.recorded.ledger.promoted_from = Some(PromotedFrom {
            environment: source_name.clone(),
            commit,
        });
        return Ok(());
    }
    if let Some(unread) = &merged.unread {
        let (location, why) = (ledger.location().unwrap_or_default(), &unread.why);
        if unread.timed_out {
            run.store_dead = Some((super::storage_of(&location), why.clone()));
        }
        return Err(TfenvError::Refused {
            message: format!(
                "promotion check failed: the shared ledger of `{source_name}` at `{location}` could not be read ({why}): tfenv cannot tell whether `{source_name}` deployed {what} `{}`, and `{}` deploys only commits `{source_name}` deployed",
                short(&commit),
                env.name
            ),
            hint: Some(format!(
                "retry when the state backend answers (a larger --timeout if it is slow), or pass {HINT_SKIP}"
            )),
        }
        .into());
    }
    if let Some(why) = &unresolved {
        return Err(TfenvError::Refused {
            message: format!(
                "promotion check failed: the shared ledger of `{source_name}` could not be read ({why}): tfenv cannot tell whether `{source_name}` deployed {what} `{}`, and `{}` deploys only commits `{source_name}` deployed",
                short(&commit),
                env.name
            ),
            hint: Some(format!(
                "fix the backend settings of `{source_name}` and retry, or pass {HINT_SKIP}"
            )),
        }
        .into());
    }
    let shared_note = match (ledger.mode, ledger.shared.is_some()) {
        (_, true) => None,
        (LedgerMode::Local, false) => Some(format!(
            "tfenv sees only this machine's history (`[project] ledger = \"local\"`): a deploy of `{source_name}` from another machine or CI is not seen; share history through the state backend with `[project] ledger = \"backend\"` (docs/team.md)"
        )),
        (LedgerMode::Backend, false) => Some(format!(
            "tfenv sees only this machine's history: the backend of `{source_name}` keeps no shared ledger"
        )),
    };
    Err(refusal(env, source_name, &commit, what, &evidence, shared_note).into())
}

/// The commit checked and how a message names it. A tree with changes, no git or git
/// failing is refused: what is deployed would not be a commit `promote_from` deployed.
fn commit_of(
    run: &Run<'_>,
    deploying: &Deploying<'_>,
    source: &str,
) -> Result<(String, &'static str), TfenvError> {
    let env = &run.env.name;
    let refused = |why: String, fix: &str| TfenvError::Refused {
        message: format!("promotion check failed: {why}"),
        hint: Some(format!("{fix}, or pass {HINT_SKIP}")),
    };
    match deploying {
        Deploying::Bundle(bundle) => match &bundle.meta.git {
            Some(git) if promotion::is_commit(&git.commit) => {
                Ok((git.commit.clone(), "the plan bundle's commit"))
            }
            Some(git) => Err(refused(
                format!(
                    "the plan bundle was planned at `{}`, which is not a git commit: `{env}` deploys only commits `{source}` deployed",
                    git.commit
                ),
                "plan it from a checkout with a commit",
            )),
            None => Err(refused(
                format!(
                    "the plan bundle was planned outside git: `{env}` deploys only commits `{source}` deployed"
                ),
                "plan it from a git checkout",
            )),
        },
        Deploying::Head => match run.recorded.git() {
            Ok(Some(checkout)) if checkout.is_dirty() => Err(refused(
                format!(
                    "the git tree has uncommitted changes ({}): `{source}` never deployed them, and `{env}` deploys only commits `{source}` deployed",
                    checkout.listed()
                ),
                &format!("commit them and deploy `{source}` first"),
            )),
            Ok(Some(checkout)) if promotion::is_commit(&checkout.info.commit) => {
                Ok((checkout.info.commit.clone(), "HEAD"))
            }
            Ok(Some(checkout)) => Err(refused(
                format!(
                    "HEAD is not a commit (`{}`, a repository with no commits yet): `{env}` deploys only commits `{source}` deployed",
                    checkout.info.commit
                ),
                &format!("commit, deploy `{source}`,"),
            )),
            Ok(None) => Err(refused(
                format!(
                    "not a git repository: `{env}` deploys only commits `{source}` deployed, and there is no commit here"
                ),
                "deploy from a git checkout",
            )),
            Err(err) => Err(refused(
                format!("cannot tell the git commit `{env}` would deploy: {err:#}"),
                "fix git here (e.g. `git config --global --add safe.directory <path>`)",
            )),
        },
    }
}

/// "promotion check failed: …", naming the commit, what the source environment last
/// deployed (and a deploy of this commit that did not count), and how to go on.
fn refusal(
    env: &Environment,
    source: &str,
    commit: &str,
    what: &str,
    evidence: &Evidence<'_>,
    shared_note: Option<String>,
) -> TfenvError {
    let mut message = format!(
        "promotion check failed: `{}` deploys only a commit `{source}` has deployed successfully from a clean tree, and {what} `{}` is not one",
        env.name,
        short(commit)
    );
    // The newest deploy that counts: a commit deployed from a clean tree.
    match evidence
        .last_success
        .and_then(|last| Some((last, last.record.git.as_ref()?)))
    {
        Some((last, git)) => message.push_str(&format!(
            "\n  `{source}` last deployed `{}` {}",
            short(&git.commit),
            when_who(last)
        )),
        None => message.push_str(&format!(
            "\n  `{source}`'s history has no successful deploy from a clean tree"
        )),
    }
    if let Some(other) = evidence.not_counted {
        message.push_str(&format!(
            "\n  `{source}`'s deploy of `{}` {} {}",
            short(commit),
            when_who(other),
            promotion::why_not(&other.record)
        ));
    }
    if let Some(note) = shared_note {
        message.push_str(&format!("\n  {note}"));
    }
    // Deployed, but from a tree with uncommitted changes: deploying it again the same
    // way would not count either.
    let how = match evidence.not_counted {
        Some(other) if promotion::dirty_success(&other.record) => {
            " from a clean tree (commit or stash the changes there first)"
        }
        _ => "",
    };
    TfenvError::Refused {
        message,
        hint: Some(format!(
            "deploy `{source}` at `{}`{how} first (`tfenv deploy {source}`), or pass {HINT_SKIP}",
            short(commit)
        )),
    }
}

/// "on 2026-11-30 16:50:12 UTC by alice@laptop", and where the record lives when it is
/// shared.
fn when_who(entry: &Entry<HistoryRecord>) -> String {
    let record = &entry.record;
    let place = match entry.place {
        Where::Local => "",
        Where::Shared => " (shared ledger)",
        Where::Both => " (local and shared ledger)",
    };
    format!(
        "on {} by {}@{}{place}",
        record.end.format("%Y-%m-%d %H:%M:%S UTC"),
        record.who,
        record.host
    )
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}
