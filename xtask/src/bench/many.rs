//! The many-environments sections: `tfenv plan --all` (plan-all) and `tfenv drift --all`
//! (drift-all) over 12 environments of the demo's layout against 12 `tfenv plan <env>`
//! (`tfenv drift <env>`) one after another, side by side in one run. One code serves
//! both: a drift check is a plan (`-lock=false`, `-detailed-exitcode`) and its report.

use std::ffi::OsString;

use anyhow::{Context, bail, ensure};

use super::measure::{Cmd, Plan, Samples};
use super::report::{Section, Table, Target};
use super::status::EnvsProject;
use super::{Ctx, argv, say, show_argv};

const ENV_COUNT: usize = 12;
/// `<verb> --all` at most this share of the sequential runs (DESIGN §10 and §11).
const RATIO: f64 = 0.6;

/// One command run over many environments: its section's name, the subcommand, the
/// issue that set the target, and what a run's JSON says of each environment when it
/// went as expected.
pub struct Many {
    pub section: &'static str,
    pub verb: &'static str,
    pub issue: &'static str,
    pub expected_result: &'static str,
    /// What each run does, for the method paragraph.
    pub does: &'static str,
    /// tfenv's default `--jobs`, per CPU.
    pub jobs_per_cpu: usize,
}

pub const PLAN_ALL: Many = Many {
    section: "plan-all",
    verb: "plan",
    issue: "11",
    expected_result: "planned",
    does: "Each plan has changes (nothing was ever applied) and exits 0.",
    jobs_per_cpu: 1,
};

pub const DRIFT_ALL: Many = Many {
    section: "drift-all",
    verb: "drift",
    issue: "12",
    expected_result: "in-sync",
    does: "Each check is a plan with `-lock=false -detailed-exitcode` and its `show -json`, \
which tfenv reads for drift and pending changes (nothing was ever applied: the changes \
are pending, none is drift), then writes `drift.json` and a history record; each exits 0. \
tfenv's default is two checks per CPU (a check against a cloud mostly waits for its APIs).",
    jobs_per_cpu: 2,
};

pub fn many(ctx: &Ctx, many: &Many) -> anyhow::Result<Section> {
    let Many {
        section,
        verb,
        issue,
        expected_result,
        does,
        jobs_per_cpu,
    } = many;
    let jobs = jobs_per_cpu * ctx.cpus;
    let wide = (2 * jobs).to_string();
    let project = EnvsProject::generate(ctx, section, ENV_COUNT)?;
    let tfenv = |args: &[&str]| {
        let mut v = ctx.tfenv_argv(&project.dir);
        v.extend(argv(args));
        v
    };
    let all = tfenv(&[verb, "--all"]);
    let all_wide = tfenv(&[verb, "--all", "-j", &wide]);
    // The sequential runs as one bash script: one process per command, as a CI job's
    // loop over `tfenv <verb> <env>` would be.
    let script = ctx.tmp.join(format!("{section}-sequential.sh"));
    let mut text =
        format!("# 12 `tfenv {verb} <env>` one after another (cargo xtask bench)\nset -e\n");
    for env in &project.envs {
        text.push_str(&show_argv(&tfenv(&[verb, env])));
        text.push_str(" >/dev/null 2>&1\n");
    }
    std::fs::write(&script, text)?;
    let sequential = argv([OsString::from("bash"), script.clone().into()]);

    // Every environment initialized first (`<verb> --all` inits them), so that both
    // sides time plans only; then one checked run: 12 entries, each as expected.
    say(&format!(
        "{section}: initializing {ENV_COUNT} environments (one `tfenv {verb} --all`)"
    ));
    ctx.run_ok(&ctx.env, &all, None)?;
    let mut json_argv = all.clone();
    json_argv.extend(argv(["--output", "json"]));
    let out = ctx.run_ok(&ctx.env, &json_argv, None)?;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .context(format!("tfenv {verb} --all printed no JSON"))?;
    let as_expected = doc["environments"].as_array().map_or(0, |envs| {
        envs.iter()
            .filter(|e| e["result"] == *expected_result)
            .count()
    });
    ensure!(
        as_expected == ENV_COUNT,
        "tfenv {verb} --all: {as_expected} of {ENV_COUNT} environments `{expected_result}`: {doc}"
    );
    ctx.run_ok(&ctx.env, &sequential, None)?;

    say(&format!(
        "{section}: {} runs of each, side by side",
        ctx.reps
    ));
    let samples = ctx.timer.measure(
        &ctx.env,
        &ctx.tmp,
        &[
            Cmd::new(format!("tfenv {verb} --all"), all.clone()),
            Cmd::new(format!("12 × tfenv {verb} <env>"), sequential),
            Cmd::new(format!("tfenv {verb} --all -j {wide}"), all_wide.clone()),
        ],
        Plan::alternating(ctx.reps),
    )?;
    let [all_s, seq_s, wide_s] = &samples[..] else {
        bail!("three commands measured, not {}", samples.len());
    };
    let ratio = all_s.median() / seq_s.median();
    let met = ratio <= RATIO;
    say(&format!(
        "{verb} --all {:.0} ms, sequential {:.0} ms: {ratio:.2}; -j {wide} {:.0} ms",
        all_s.median(),
        seq_s.median(),
        wide_s.median()
    ));
    let target = Target {
        what: format!(
            "`tfenv {verb} --all` over {ENV_COUNT} environments at most {RATIO}× {ENV_COUNT} sequential `tfenv {verb} <env>`"
        ),
        met,
        figures: format!(
            "{:.0} ms vs {:.0} ms: {ratio:.2}× {} {RATIO}×",
            all_s.median(),
            seq_s.median(),
            if met { "≤" } else { ">" }
        ),
    };
    let mut table = Table::new([
        "command",
        "median, ms",
        "min, ms",
        "CPU (user + sys), ms",
        "÷ sequential",
    ]);
    let rows: [(String, &Samples); 3] = [
        (
            format!("`tfenv {verb} --all` (-j {jobs}: its default)"),
            all_s,
        ),
        (
            format!("{ENV_COUNT} × `tfenv {verb} <env>`, one after another"),
            seq_s,
        ),
        (format!("`tfenv {verb} --all -j {wide}`"), wide_s),
    ];
    for (name, s) in rows {
        table.row([
            name,
            format!("{:.1}", s.median()),
            format!("{:.1}", s.min()),
            format!("{:.0}", s.cpu_median()),
            format!("{:.2}", s.median() / seq_s.median()),
        ]);
    }
    let body = format!(
        "## Many environments at once: `tfenv {verb} --all`

**Method.** A generated project of {ENV_COUNT} environments in the demo's layout
(`environments/<env>.backend.conf` + `.tfvars`, the local backend, the root module of
`examples/quickstart`: no provider), every environment initialized first, so that both
sides time plans only. {does}
Median of {runs} runs each, side by side in one run, each round in a rotated order
(timing: {timer}):

- `{all}`: the environments run at once, {jobs} at a time (its default on {cpus} CPUs), each
  one's output kept and printed as one block, then the table.
- The same {ENV_COUNT} runs as `tfenv {verb} <env>` one after another (a bash script,
  output to /dev/null).
- `tfenv {verb} --all -j {wide}`, for comparison: twice as many at once.

{table}
**Target** (issue {issue}): {what} — {verdict}.

**Reading the figures.** A plan of this module is a few terraform processes (`plan`,
`show -json`), mostly terraform's start-up and configuration loading. One after
another they used {busy:.0} % of one CPU on average (CPU time ÷ wall time of the
sequential run; terraform is multi-threaded, so it can use more than one CPU at
times, and it also waits for files and process starts). Side by side, {cpus} plans
share the {cpus} CPUs: the ratio approaches 1/{cpus} when the sequential run keeps
about one CPU busy, and `-j` above the CPU count fills what waiting is left. tfenv
itself starts once instead of {ENV_COUNT} times. On a busy machine (see the CPU used
by other processes) the gain shrinks: the CPUs are not free to take the second plan,
and the figures vary from run to run (compare median and min).
",
        runs = ctx.reps,
        busy = 100.0 * seq_s.cpu_median() / seq_s.median(),
        timer = ctx.timer.label(),
        all = show_argv(&argv(["tfenv", verb, "--all"])),
        cpus = ctx.cpus,
        table = table.render(),
        what = target.what,
        verdict = target.verdict(),
    );
    Ok(Section {
        load_label: format!("{verb} --all"),
        targets: vec![target],
        body,
    })
}
