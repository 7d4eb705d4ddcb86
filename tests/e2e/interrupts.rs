//! Signals in the middle of a real `terraform apply` (DESIGN.md §5, "Interrupts").
//!
//! Ctrl-C, SIGTERM, SIGQUIT and SIGHUP (also a real terminal closing under tfenv): tfenv
//! passes one SIGINT to terraform's process group, waits for it to stop and release the
//! state lock, removes the plan file, records `interrupted` and exits 130; the next
//! deploy is not blocked by a stale lock. Ctrl-Z (SIGTSTP) is ignored while terraform
//! runs. SIGKILL cannot be caught: terraform still finishes its apply and releases its
//! lock, and the next run says that the previous one was killed. A file-size limit
//! (`ulimit -f`) makes a backup fail cleanly instead of killing tfenv.
//!
//! The apply is slow on purpose: a `terraform_data` whose `local-exec` provisioner
//! sleeps, with an input that changes on every deploy.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::support::moto::Moto;
use crate::support::procs::{self, live_in_group, processes};
use crate::support::running::RunningTfenv;
use crate::support::slow::{BUCKET, KEY, LOCAL_LOCK_INFO, LOCAL_STATE, SlowProject, TABLE};

/// The provisioner's sleep in the deploy that gets interrupted: far longer than the
/// test waits for tfenv to exit, so only an interrupted terraform can exit in time.
const SLOW_SLEEP: u32 = 30;
/// How long tfenv may take from the signal to its exit.
const EXIT_WITHIN: Duration = Duration::from_secs(25);
/// How long init + plan + the start of the apply may take.
const APPLY_STARTS_WITHIN: Duration = Duration::from_secs(90);
/// What every interrupted deploy must show, whatever the signal and the backend.
fn assert_interrupted_cleanly(
    slow: &SlowProject,
    run: &mut RunningTfenv,
    terraform: Pid,
    signal: Signal,
) -> Duration {
    let (status, took) = run.wait_exit(EXIT_WITHIN);
    let output = run.output_text();
    assert_eq!(
        status.code(),
        Some(130),
        "tfenv exits 130 after {signal}\n{output}"
    );
    let stderr = run.stderr();
    assert!(
        stderr.contains("waiting for `terraform` to stop"),
        "tfenv says it waits for terraform\n{output}"
    );
    assert_eq!(
        stderr.matches("waiting for `terraform` to stop").count(),
        1,
        "one signal, one message\n{output}"
    );
    assert!(
        !stderr.contains("second interrupt") && !stderr.contains("killing it"),
        "one signal never escalates\n{output}"
    );
    // terraform saw exactly one interrupt (a second would make it abandon the lock).
    assert!(
        stderr.contains("Interrupt received.") && stderr.contains("Gracefully shutting down..."),
        "terraform got the interrupt and shut down gracefully\n{output}"
    );
    assert!(
        !stderr.contains("Two interrupts received"),
        "terraform got a second interrupt\n{output}"
    );
    assert!(
        !stderr.contains("tfenv unlock"),
        "the lock was released, so there is no unlock advice\n{output}"
    );
    let left = live_in_group(terraform);
    assert!(
        left.is_empty(),
        "nothing of terraform's process group (terraform, the provisioner's sleep) runs \
         on after tfenv exited: {left:?}\n{output}"
    );
    assert!(
        !slow.plan_file().exists(),
        "the plan file is removed on interrupt\n{output}"
    );
    let last = slow.last_history();
    assert_eq!(last["result"], "interrupted", "{last}");
    assert_eq!(last["exit_code"], 130, "{last}");
    assert_eq!(last["command"], "deploy", "{last}");
    took
}

/// A deploy on the local backend is interrupted by `signal` while its apply runs.
fn interrupt_local_apply(signal: Signal) {
    let slow = SlowProject::local();
    slow.set_vars(1, SLOW_SLEEP);
    let mut run = slow.spawn_deploy();
    let terraform = run.wait_for_slow_apply(APPLY_STARTS_WITHIN);
    assert!(
        slow.project.join(LOCAL_LOCK_INFO).is_file(),
        "terraform holds the local state lock during the apply\n{}",
        run.output_text()
    );

    run.signal(signal);
    let took = assert_interrupted_cleanly(&slow, &mut run, terraform, signal);
    assert!(
        !slow.project.join(LOCAL_LOCK_INFO).exists(),
        "terraform released the local state lock (its info file is gone)\n{}",
        run.output_text()
    );
    eprintln!("tfenv stopped {took:?} after {signal}");

    let again = slow.deploy_succeeds(2);
    eprintln!("the next deploy took {again:?}");
    assert!(!slow.project.join(LOCAL_LOCK_INFO).exists());
}

#[test]
fn sigint_during_apply_stops_terraform_releases_the_lock_and_exits_130() {
    interrupt_local_apply(Signal::SIGINT);
}

#[test]
fn sigterm_during_apply_stops_terraform_releases_the_lock_and_exits_130() {
    interrupt_local_apply(Signal::SIGTERM);
}

#[test]
fn sigint_during_apply_on_s3_removes_the_dynamodb_lock_item_and_exits_130() {
    let moto = Moto::start();
    let slow = SlowProject::s3(&moto);
    let lock_id = format!("{BUCKET}/{KEY}");
    slow.set_vars(1, SLOW_SLEEP);
    let mut run = slow.spawn_deploy();
    let terraform = run.wait_for_slow_apply(APPLY_STARTS_WITHIN);

    let lock = moto.lock_info(TABLE, &lock_id).unwrap_or_else(|| {
        panic!(
            "no DynamoDB lock item `{lock_id}` while the apply runs\n{}",
            run.output_text()
        )
    });
    assert_eq!(lock["Operation"], "OperationTypeApply", "{lock}");
    assert_eq!(lock["Path"], lock_id.as_str(), "{lock}");

    run.signal(Signal::SIGINT);
    let took = assert_interrupted_cleanly(&slow, &mut run, terraform, Signal::SIGINT);
    assert_eq!(
        moto.lock_item(TABLE, &lock_id),
        None,
        "the lock item is gone once tfenv exited\n{}",
        run.output_text()
    );
    eprintln!("tfenv stopped {took:?} after SIGINT");

    let again = slow.deploy_succeeds(2);
    eprintln!("the next deploy took {again:?}");
    assert_eq!(moto.lock_item(TABLE, &lock_id), None);
    // The state landed in the bucket: the follow-up applied run-2.
    let state = moto.object_text(BUCKET, KEY);
    assert!(state.contains("run-2"), "{state}");
}

#[test]
fn sigquit_during_apply_stops_terraform_releases_the_lock_and_exits_130() {
    interrupt_local_apply(Signal::SIGQUIT);
}

#[test]
fn sighup_during_apply_stops_terraform_releases_the_lock_and_exits_130() {
    interrupt_local_apply(Signal::SIGHUP);
}

/// What a hung-up deploy must leave, though nothing it prints can be seen any more: tfenv
/// waited for terraform, which released its lock, and recorded the interrupt.
fn assert_hung_up_cleanly(slow: &SlowProject, run: &mut RunningTfenv, terraform: Pid) {
    let (status, took) = run.wait_exit(EXIT_WITHIN);
    let output = run.output_text();
    assert_eq!(
        status.code(),
        Some(130),
        "tfenv exits 130 after its terminal closed (not killed by SIGHUP)\n{output}"
    );
    let left = live_in_group(terraform);
    assert!(
        left.is_empty(),
        "nothing of terraform's process group runs on: {left:?}\n{output}"
    );
    assert!(
        !slow.plan_file().exists(),
        "the plan file is removed\n{output}"
    );
    let last = slow.last_history();
    assert_eq!(last["result"], "interrupted", "{last}");
    assert_eq!(last["exit_code"], 130, "{last}");
    eprintln!("tfenv stopped {took:?} after its terminal closed");
}

#[test]
fn closing_the_terminal_during_apply_releases_the_lock_and_records_interrupted() {
    let slow = SlowProject::local();
    slow.set_vars(1, SLOW_SLEEP);
    let mut run = slow.spawn_deploy_in_terminal();
    let terraform = run.wait_for_slow_apply(APPLY_STARTS_WITHIN);
    assert!(
        slow.project.join(LOCAL_LOCK_INFO).is_file(),
        "terraform holds the local state lock during the apply\n{}",
        run.output_text()
    );

    run.hang_up();
    assert_hung_up_cleanly(&slow, &mut run, terraform);
    assert!(
        !slow.project.join(LOCAL_LOCK_INFO).exists(),
        "terraform released the local state lock\n{}",
        run.output_text()
    );
    slow.deploy_succeeds(2);
}

#[test]
fn closing_the_terminal_during_apply_on_s3_removes_the_dynamodb_lock_item() {
    let moto = Moto::start();
    let slow = SlowProject::s3(&moto);
    let lock_id = format!("{BUCKET}/{KEY}");
    slow.set_vars(1, SLOW_SLEEP);
    let mut run = slow.spawn_deploy_in_terminal();
    let terraform = run.wait_for_slow_apply(APPLY_STARTS_WITHIN);
    assert!(
        moto.lock_info(TABLE, &lock_id).is_some(),
        "a DynamoDB lock item while the apply runs\n{}",
        run.output_text()
    );

    run.hang_up();
    assert_hung_up_cleanly(&slow, &mut run, terraform);
    assert_eq!(
        moto.lock_item(TABLE, &lock_id),
        None,
        "the lock item is gone once tfenv exited\n{}",
        run.output_text()
    );
    slow.deploy_succeeds(2);
}

#[test]
fn ctrl_z_during_apply_is_ignored_and_said_once() {
    const NOTICE: &str = "Ctrl-Z ignored while `terraform` runs";
    let slow = SlowProject::local();
    slow.set_vars(1, 6);
    let mut run = slow.spawn_deploy();
    run.wait_for_slow_apply(APPLY_STARTS_WITHIN);

    run.signal(Signal::SIGTSTP);
    std::thread::sleep(Duration::from_millis(300));
    run.signal(Signal::SIGTSTP);
    std::thread::sleep(Duration::from_millis(500));
    let state = procs::state(run.pid());
    assert_ne!(
        state,
        'T',
        "tfenv must not stop while terraform holds the state lock\n{}",
        run.output_text()
    );
    let (status, _) = run.wait_exit(Duration::from_secs(60));
    let output = run.output_text();
    assert_eq!(
        status.code(),
        Some(0),
        "the deploy went on to the end\n{output}"
    );
    assert_eq!(
        run.stderr().matches(NOTICE).count(),
        1,
        "the notice is printed once\n{output}"
    );
    assert!(
        run.stderr().contains("press Ctrl-C to stop it"),
        "it says how to stop instead\n{output}"
    );
    let last = slow.last_history();
    assert_eq!(last["result"], "applied", "{last}");
}

/// SIGKILL cannot be caught. terraform, in its own process group, must still finish the
/// apply and release its lock on its own — it must not die of SIGPIPE at its next line of
/// output because tfenv's end of a pipe went away (measured: Terraform 1.11 does, even
/// with SIGPIPE ignored, at its "Still creating... [10s elapsed]" line). The next run on
/// the environment says that the previous one was killed, and goes on.
#[test]
fn sigkill_during_apply_lets_terraform_finish_and_the_next_run_says_so() {
    // Long enough for terraform to print "Still creating..." after tfenv is gone.
    const SLEEP: u32 = 14;
    let slow = SlowProject::local();
    slow.set_vars(1, SLEEP);
    let mut run = slow.spawn_deploy();
    let terraform = run.wait_for_slow_apply(APPLY_STARTS_WITHIN);

    run.signal(Signal::SIGKILL);
    let (status, _) = run.wait_exit(Duration::from_secs(5));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{}",
        run.output_text()
    );
    // terraform goes on alone; it is someone else's child now.
    let started = Instant::now();
    while processes()
        .iter()
        .any(|p| p.pid == terraform && p.is_live())
    {
        assert!(
            started.elapsed() < Duration::from_secs(u64::from(SLEEP) + 30),
            "terraform (pid {terraform}) did not finish after tfenv was killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let state: serde_json::Value = serde_json::from_str(&slow.project.read(LOCAL_STATE))
        .unwrap_or_else(|err| {
            panic!(
                "terraform died before writing the state ({err}): {:?}",
                slow.project.read(LOCAL_STATE)
            )
        });
    assert_eq!(
        state["outputs"]["run_id"]["value"], "run-1",
        "terraform finished the apply: {state}"
    );
    assert!(
        !slow.project.join(LOCAL_LOCK_INFO).exists(),
        "terraform released its state lock"
    );
    assert!(
        slow.plan_file().exists(),
        "the killed tfenv could not remove its plan file"
    );

    // Before any run records it, status says that a run was killed mid-apply.
    let status = slow.run(&["status", "dev", "--output", "json"]);
    assert_eq!(status.status.code(), Some(6));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let problems = status["environments"][0]["problems"].to_string();
    assert!(
        problems.contains("\"killed-run\"") && problems.contains("applying since"),
        "{status}"
    );

    // The next run: a warning about the killed one, then business as usual.
    slow.set_vars(2, 0);
    let output = slow.run(&["deploy", "dev", "--yes"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: the previous run on `dev` (pid ")
            && stderr.contains("`tfenv deploy dev`")
            && stderr.contains("was killed before it finished"),
        "the next run says the previous one was killed:\n{stderr}"
    );
    assert!(
        stderr.contains("terraform.plan` behind"),
        "and that it left its plan behind:\n{stderr}"
    );
    assert!(
        stderr.contains("`tfenv status dev`") && stderr.contains("`tfenv lock dev`"),
        "and what to check:\n{stderr}"
    );
    assert_eq!(stderr.matches("was killed").count(), 1, "{stderr}");
    assert_eq!(slow.last_history()["result"], "applied");
    // History has the killed run, recorded by this one before its own record.
    let history = slow.project.read("state/dev/history.jsonl");
    let records: Vec<serde_json::Value> = history
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let killed = &records[records.len() - 2];
    assert_eq!(killed["result"], "killed", "{history}");
    assert_eq!(killed["reached_apply"], true, "{killed}");
    // The deploy after it finished: status is healthy again.
    let status = slow.run(&["status", "dev", "--output", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        status["environments"][0]["problems"],
        serde_json::json!([]),
        "{status}"
    );

    // Reported once: the run after that has nothing to say.
    let output = slow.run(&["plan", "dev"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("killed"), "{stderr}");
}

/// `nohup tfenv …` asks to survive a hangup: a SIGHUP that tfenv inherited as ignored
/// stays ignored, and the deploy goes on to the end.
#[test]
fn under_nohup_a_hangup_during_apply_changes_nothing() {
    let slow = SlowProject::local();
    slow.set_vars(1, 4);
    let mut command = slow.command_via(&["nohup"]);
    command.args(["deploy", "dev", "--yes"]);
    let mut run = RunningTfenv::spawn(command);
    run.wait_for_slow_apply(APPLY_STARTS_WITHIN);

    run.signal(Signal::SIGHUP);
    let (status, _) = run.wait_exit(Duration::from_secs(60));
    let output = run.output_text();
    assert_eq!(status.code(), Some(0), "{output}");
    assert!(
        !run.stderr().contains("waiting for `terraform`"),
        "{output}"
    );
    assert_eq!(slow.last_history()["result"], "applied");
}

/// `ulimit -f` makes a write past the limit raise SIGXFSZ, whose default kills tfenv in
/// the middle of the backup and leaves its `.partial` file. tfenv catches it instead:
/// the write fails with EFBIG, the backup's own cleanup runs, and tfenv says what failed.
#[test]
fn a_file_size_limit_fails_a_backup_cleanly_instead_of_killing_tfenv() {
    let slow = SlowProject::local();
    slow.deploy_succeeds(1);
    // A limit of 0 blocks: tfenv starts (it writes no file to start), terraform's
    // `state pull` writes only to tfenv, and the first write of the backup fails.
    let output = slow
        .command_via(&["bash", "-c", r#"ulimit -f 0; exec "$0" "$@""#])
        .args(["backup", "dev"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "tfenv fails the backup, it is not killed by SIGXFSZ ({:?})\n{stderr}",
        output.status
    );
    assert!(
        stderr.contains("error:") && stderr.contains("File too large"),
        "{stderr}"
    );
    let left: Vec<String> = std::fs::read_dir(slow.project.join("state/dev/backups"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| !name.ends_with(".lock"))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.iter().all(|name| !name.contains("partial")),
        "no partial backup is left: {left:?}"
    );
    assert!(
        left.iter()
            .all(|name| !name.starts_with("terraform.tfstate.")),
        "no backup was made: {left:?}"
    );
}
