//! The plan-all section: `tfenv plan --all` over 12 environments of the demo's layout
//! against 12 `tfenv plan <env>` one after another, side by side in one run.

use std::ffi::OsString;

use anyhow::{Context, bail, ensure};

use super::measure::{Cmd, Plan, Samples};
use super::report::{Section, Table, Target};
use super::status::EnvsProject;
use super::{Ctx, argv, say, show_argv};

const ENV_COUNT: usize = 12;
/// `plan --all` at most this share of the sequential plans (DESIGN §10, issue 11).
const RATIO: f64 = 0.6;

pub fn plan_all(ctx: &Ctx) -> anyhow::Result<Section> {
    let project = EnvsProject::generate(ctx, "plan-all", ENV_COUNT)?;
    let tfenv = |args: &[&str]| {
        let mut v = ctx.tfenv_argv(&project.dir);
        v.extend(argv(args));
        v
    };
    let all = tfenv(&["plan", "--all"]);
    let all_wide = tfenv(&["plan", "--all", "-j", "4"]);
    // The sequential plans as one bash script: one process per command, as a CI job's
    // loop over `tfenv plan <env>` would be.
    let script = ctx.tmp.join("plan-all-sequential.sh");
    let mut text =
        "# 12 `tfenv plan <env>` one after another (cargo xtask bench)\nset -e\n".to_string();
    for env in &project.envs {
        text.push_str(&show_argv(&tfenv(&["plan", env])));
        text.push_str(" >/dev/null 2>&1\n");
    }
    std::fs::write(&script, text)?;
    let sequential = argv([OsString::from("bash"), script.clone().into()]);

    // Every environment initialized first (`plan --all` inits them, one at a time), so
    // that both sides time plans only; then one checked run: 12 entries, each planned.
    say(&format!(
        "plan-all: initializing {ENV_COUNT} environments (one `tfenv plan --all`)"
    ));
    ctx.run_ok(&ctx.env, &all, None)?;
    let mut json_argv = all.clone();
    json_argv.extend(argv(["--output", "json"]));
    let out = ctx.run_ok(&ctx.env, &json_argv, None)?;
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("tfenv plan --all printed no JSON")?;
    let planned = doc["environments"].as_array().map_or(0, |envs| {
        envs.iter().filter(|e| e["result"] == "planned").count()
    });
    ensure!(
        planned == ENV_COUNT,
        "tfenv plan --all planned {planned} of {ENV_COUNT} environments: {doc}"
    );
    ctx.run_ok(&ctx.env, &sequential, None)?;

    say(&format!(
        "plan-all: {} runs of each, side by side",
        ctx.reps
    ));
    let samples = ctx.timer.measure(
        &ctx.env,
        &ctx.tmp,
        &[
            Cmd::new("tfenv plan --all", all.clone()),
            Cmd::new("12 × tfenv plan <env>", sequential),
            Cmd::new("tfenv plan --all -j 4", all_wide.clone()),
        ],
        Plan::alternating(ctx.reps),
    )?;
    let [all_s, seq_s, wide_s] = &samples[..] else {
        bail!("three commands measured, not {}", samples.len());
    };
    let ratio = all_s.median() / seq_s.median();
    let met = ratio <= RATIO;
    say(&format!(
        "plan --all {:.0} ms, sequential {:.0} ms: {ratio:.2}; -j 4 {:.0} ms",
        all_s.median(),
        seq_s.median(),
        wide_s.median()
    ));
    let target = Target {
        what: format!(
            "`tfenv plan --all` over {ENV_COUNT} environments at most {RATIO}× {ENV_COUNT} sequential `tfenv plan <env>`"
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
            format!("`tfenv plan --all` (-j {}: the CPU count)", ctx.cpus),
            all_s,
        ),
        (
            format!("{ENV_COUNT} × `tfenv plan <env>`, one after another"),
            seq_s,
        ),
        ("`tfenv plan --all -j 4`".to_string(), wide_s),
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
        "## Many environments at once: `tfenv plan --all`

**Method.** A generated project of {ENV_COUNT} environments in the demo's layout
(`environments/<env>.backend.conf` + `.tfvars`, the local backend, the root module of
`examples/quickstart`: no provider), every environment initialized first, so that both
sides time plans only. Each plan has changes (nothing was ever applied) and exits 0.
Median of {runs} runs each, side by side in one run, each round in a rotated order
(timing: {timer}):

- `{all}`: the environments planned at once, {cpus} at a time (the CPU count), each
  one's output kept and printed as one block, then the table.
- The same {ENV_COUNT} plans as `tfenv plan <env>` one after another (a bash script,
  output to /dev/null).
- `tfenv plan --all -j 4`, for comparison: more plans at once than CPUs.

{table}
**Target** (issue 11): {what} — {verdict}.

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
        all = show_argv(&argv(["tfenv", "plan", "--all"])),
        cpus = ctx.cpus,
        table = table.render(),
        what = target.what,
        verdict = target.verdict(),
    );
    Ok(Section {
        load_label: "plan --all".into(),
        targets: vec![target],
        body,
    })
}
