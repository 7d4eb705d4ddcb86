//! The lock section, on the shared s3 world (`s3.rs`): `tfenv lock <env>` against the
//! aws CLI read tfenv used to run (`aws dynamodb get-item --consistent-read`), and
//! `tfenv lock --all` over the 50 environments against one `tfenv lock`.

use std::ffi::OsString;

use anyhow::{Context, bail, ensure};

use super::backups::find_key;
use super::measure::{self, Cmd, Plan};
use super::report::{Section, Table, Target};
use super::s3::{self, BUCKET, ENV_COUNT, S3Project, TABLE};
use super::{Ctx, argv, say};

/// `tfenv lock <env>` at most 0.1× the aws CLI read it replaces.
const LOCK_VS_CLI_TARGET: f64 = 0.1;
/// `lock --all` at most 2× one lock.
const LOCK_ALL_TARGET: f64 = 2.0;

/// "a ≤ b" or "a > b" for a target's figures.
fn cmp(ratio: f64, target: f64) -> &'static str {
    if ratio <= target { "≤" } else { ">" }
}

pub fn lock(ctx: &Ctx, project: &S3Project) -> anyhow::Result<Section> {
    let env = &project.env;
    let proj = &project.dir;
    let lock_id = &project.lock_id;

    // tfenv must read env01's lock (holder and ID) and see env02's as free.
    let lock_json = |which: &str| -> anyhow::Result<serde_json::Value> {
        let mut cmd = ctx.tfenv_argv(proj);
        cmd.extend(argv(["--output", "json", "lock", which]));
        let out = ctx.run_ok(env, &cmd, None)?;
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("`tfenv --output json lock {which}` printed no JSON"))
    };
    let held = lock_json("env01")?;
    ensure!(
        find_key(&held, "held") == Some(&serde_json::Value::Bool(true))
            && find_key(&held, "id").and_then(|i| i.as_str()) == Some(lock_id.as_str()),
        "`tfenv lock env01` does not name lock `{lock_id}` as held: {held}"
    );
    let free = lock_json("env02")?;
    ensure!(
        find_key(&free, "held") == Some(&serde_json::Value::Bool(false)),
        "`tfenv lock env02` does not say it is free: {free}"
    );
    let all = lock_json("--all")?;
    let all_text = all.to_string();
    ensure!(
        all_text.contains(lock_id.as_str())
            && project
                .envs
                .iter()
                .all(|e| all_text.contains(&format!("\"{e}\""))),
        "`tfenv lock --all` does not list the {ENV_COUNT} environments with env01's lock: {all}"
    );
    say("tfenv lock reads env01 as held (with the right ID), env02 as free, and --all all 50");

    // What scripts do today: plan, and take the lock ID out of its error's "Lock Info:".
    let plan_script = ctx.tmp.join("plan-lock.sh");
    std::fs::write(
        &plan_script,
        format!(
            "# terraform plan on env01's held lock, and the lock ID from its error (cargo xtask bench)\n\
             cd '{proj}'\n\
             if out=$(TF_DATA_DIR='{data}' '{tf}' plan -lock-timeout=0s -input=false -no-color 2>&1); then\n\
             \techo \"plan succeeded on a held lock\" >&2; exit 1\nfi\n\
             id=$(awk '/^Lock Info:/ {{ f = 1 }} f && $1 == \"ID:\" {{ print $2; exit }}' <<<\"$out\")\n\
             if [[ \"$id\" != \"$1\" ]]; then printf 'lock id `%s`, not `%s`:\\n%s\\n' \"$id\" \"$1\" \"$out\" >&2; exit 1; fi\n",
            proj = proj.display(),
            data = project.data_dir("env01").display(),
            tf = ctx.terraform.display()
        ),
    )?;
    let plan_cmd = argv([
        OsString::from("bash"),
        plan_script.into(),
        lock_id.clone().into(),
    ]);
    let mut lock1 = ctx.tfenv_argv(proj);
    lock1.extend(argv(["lock", "env01"]));
    let mut lock_all = ctx.tfenv_argv(proj);
    lock_all.extend(argv(["lock", "--all"]));
    // Exactly the read tfenv made before the SDK (wave 1 of issue 15): one aws CLI
    // process, `dynamodb get-item --consistent-read --output json` with the endpoint.
    let lock_key = serde_json::json!({ "LockID": { "S": project.lock_path } }).to_string();
    let get_item = project.aws(&[
        "dynamodb",
        "get-item",
        "--table-name",
        TABLE,
        "--key",
        &lock_key,
        "--consistent-read",
    ]);
    // And tfenv's `lock --all` before the SDK: one batch-get-item per 100 keys.
    let keys: Vec<serde_json::Value> = project
        .envs
        .iter()
        .map(
            |e| serde_json::json!({ "LockID": { "S": format!("{BUCKET}/{e}/terraform.tfstate") } }),
        )
        .collect();
    let batch = serde_json::json!({ TABLE: { "Keys": keys, "ConsistentRead": true } }).to_string();
    let batch_get = project.aws(&["dynamodb", "batch-get-item", "--request-items", &batch]);
    let aws_version_cmd = project.aws(&["--version"]);

    // Warm-up, and the checks hyperfine cannot make.
    let scratch = ctx.tmp.join("scratch");
    std::fs::create_dir_all(&scratch)?;
    for cmd in [&lock1, &plan_cmd, &lock_all] {
        measure::run_quiet(env, cmd, &scratch)?;
    }
    for cmd in [&get_item, &batch_get] {
        let out = ctx.run_ok(env, cmd, None)?;
        ensure!(
            String::from_utf8_lossy(&out.stdout).contains(lock_id.as_str()),
            "`{}` did not return env01's lock",
            super::show_argv(cmd)
        );
    }

    say(&format!(
        "lock: 6 commands side by side, {} runs each",
        ctx.reps
    ));
    let samples = ctx.timer.measure(
        env,
        &scratch,
        &[
            Cmd::new("tfenv lock env01", lock1),
            Cmd::new("aws dynamodb get-item --consistent-read", get_item),
            Cmd::new("tfenv lock --all", lock_all),
            Cmd::new("aws dynamodb batch-get-item", batch_get),
            Cmd::new("terraform plan -lock-timeout=0s + Lock Info", plan_cmd),
            Cmd::new("aws --version", aws_version_cmd),
        ],
        Plan::alternating(ctx.reps),
    )?;
    let [l1, get, all, bat, plan, ver] = &samples[..] else {
        bail!("six commands measured, not {}", samples.len());
    };
    let (lock1_med, get_med, all_med) = (l1.median(), get.median(), all.median());
    let vs_cli = lock1_med / get_med;
    let all_ratio = all_med / lock1_med;
    say(&format!(
        "tfenv lock env01 {lock1_med:.1} ms, aws get-item {get_med:.1} ms ({vs_cli:.3}×), tfenv lock --all {all_med:.1} ms ({all_ratio:.2}×)"
    ));
    let target_cli = Target {
        what: format!(
            "`tfenv lock <env>` on s3 (DynamoDB) at most {LOCK_VS_CLI_TARGET}× the aws CLI read it made before (`aws dynamodb get-item --consistent-read`)"
        ),
        met: vs_cli <= LOCK_VS_CLI_TARGET,
        figures: format!(
            "{lock1_med:.1} ms vs {get_med:.1} ms: {vs_cli:.3}× {} {LOCK_VS_CLI_TARGET}×",
            cmp(vs_cli, LOCK_VS_CLI_TARGET)
        ),
    };
    let target_all = Target {
        what: format!(
            "`tfenv lock --all` over {ENV_COUNT} s3 environments at most {LOCK_ALL_TARGET:.0}× one `tfenv lock`"
        ),
        met: all_ratio <= LOCK_ALL_TARGET,
        figures: format!(
            "{all_med:.1} ms vs {lock1_med:.1} ms: {all_ratio:.2}× {} {LOCK_ALL_TARGET:.0}×",
            cmp(all_ratio, LOCK_ALL_TARGET)
        ),
    };

    let mut table = Table::new([
        "command",
        "median, ms",
        "min, ms",
        "CPU (user + sys), ms",
        "ratio",
    ]);
    let row = |table: &mut Table, name: &str, s: &measure::Samples, ratio: String| {
        table.row([
            name.to_string(),
            format!("{:.1}", s.median()),
            format!("{:.1}", s.min()),
            format!("{:.0}", s.cpu_median()),
            ratio,
        ]);
    };
    row(&mut table, "`tfenv lock env01`", l1, String::new());
    row(
        &mut table,
        "`aws dynamodb get-item --consistent-read` (1 lock: tfenv's read before the SDK)",
        get,
        format!("`tfenv lock` ÷ this: {vs_cli:.3}"),
    );
    row(
        &mut table,
        &format!("`tfenv lock --all` ({ENV_COUNT} environments)"),
        all,
        format!("this ÷ `tfenv lock`: {all_ratio:.2}"),
    );
    row(
        &mut table,
        &format!("`aws dynamodb batch-get-item` ({ENV_COUNT} locks: `lock --all` before the SDK)"),
        bat,
        format!("`lock --all` ÷ this: {:.3}", all_med / bat.median()),
    );
    row(
        &mut table,
        "`terraform plan -lock-timeout=0s` + parse \"Lock Info\"",
        plan,
        format!("`tfenv lock` ÷ this: {:.2}", lock1_med / plan.median()),
    );
    row(
        &mut table,
        "`aws --version` (the CLI's start-up)",
        ver,
        String::new(),
    );

    let body = format!(
        "## Locks: s3 backend with a DynamoDB lock table (moto)

**Method.** {intro} Median of {reps} runs each, the six commands side by side in one
run, each round in a rotated order (timing: {timer}); CPU time is user + sys of the
command and every process it started (hyperfine's mean when hyperfine times it):

- `tfenv lock env01`: reads env01's lock item through the AWS SDK (checked once to
  name its holder and ID, and env02 as free);
- today's CLI-based read, the call tfenv itself made before it used the SDK: one
  `aws dynamodb get-item --table-name {TABLE} --key … --consistent-read --output json
  --endpoint-url …` of env01's lock (one Python process);
- `tfenv lock --all`: the {ENV_COUNT} environments' locks (one `BatchGetItem` per table,
  endpoint and credentials; checked once to list all {ENV_COUNT}), and next to it what it
  ran before the SDK: one `aws dynamodb batch-get-item` of the {ENV_COUNT} lock IDs;
- what scripts do: `terraform plan -lock-timeout=0s -input=false -no-color` with
  `TF_DATA_DIR=<root>/.terraform/tfenv/env01` in the terraform root, and the lock ID
  taken from the \"Lock Info:\" of its error (a bash script);
- `aws --version`: the aws CLI's start-up alone.

{table}
**Targets** (issue 15):

- `tfenv lock <env>` at most {LOCK_VS_CLI_TARGET}× the aws CLI read — {v_cli}.
- `tfenv lock --all` over {ENV_COUNT} environments at most {LOCK_ALL_TARGET:.0}× one `tfenv lock` — {v_all}.

**Reading the figures.**

- The aws CLI spends most of its time starting Python: `aws --version` alone takes
  {ver_med:.1} ms of the {get_med:.1} ms of one `get-item`. tfenv now makes the same
  `GetItem` request from its own process: {lock1_med:.1} ms for the whole `tfenv lock`,
  {l1_cpu:.0} ms of CPU against {get_cpu:.0} ms.
- `tfenv lock --all` reads the {ENV_COUNT} locks with one `BatchGetItem`: {all_med:.1} ms
  ({all_cpu:.0} ms of CPU), {all_ratio:.2}× one `tfenv lock`.
- `terraform plan` on the held lock fails in {plan_med:.1} ms, but it is no way to read a
  lock: when the lock is free it takes it and runs a whole plan.
",
        intro = s3::method_intro(project),
        reps = ctx.reps,
        timer = ctx.timer.label(),
        table = table.render(),
        v_cli = target_cli.verdict(),
        v_all = target_all.verdict(),
        ver_med = ver.median(),
        l1_cpu = l1.cpu_median(),
        get_cpu = get.cpu_median(),
        all_cpu = all.cpu_median(),
        plan_med = plan.median(),
    );
    Ok(Section {
        load_label: "tfenv lock".into(),
        targets: vec![target_cli, target_all],
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_at_the_target_meets_it() {
        assert_eq!(cmp(0.1, LOCK_VS_CLI_TARGET), "≤");
        assert_eq!(cmp(0.101, LOCK_VS_CLI_TARGET), ">");
        assert_eq!(cmp(1.98, LOCK_ALL_TARGET), "≤");
    }
}
