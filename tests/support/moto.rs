//! A moto server (S3 + DynamoDB emulator) on 127.0.0.1 for one test, and the aws CLI
//! pointed at it (see ../shared/TESTING.md). Stopped when dropped.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::support::{aws_cli, moto_server};

/// How long moto gets to answer on its port (it is usually up in under a second).
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// A freshly picked port can be taken by someone else before moto binds it: try again.
const START_ATTEMPTS: usize = 3;

/// A running `moto_server`. Dropping it kills the server.
pub struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Moto {
    /// Starts moto on a free port of 127.0.0.1 and waits until it answers.
    /// Panics with the set-up command when moto is not installed, and with the
    /// server's log when it does not come up.
    pub fn start() -> Moto {
        let server = moto_server();
        let dir = tempfile::Builder::new()
            .prefix("tfenv-moto-")
            .tempdir()
            .unwrap();
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let log = dir.path().join(format!("moto-{attempt}.log"));
            let log_file = std::fs::File::create(&log).unwrap();
            let mut child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file)
                // Its own group, so that stopping it stops whatever it started too.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|err| panic!("starting `{}`: {err}", server.display()));
            match wait_until_up(&mut child, port) {
                Ok(()) => {
                    return Moto {
                        child,
                        port,
                        log,
                        dir,
                    };
                }
                Err(why) => {
                    stop(&mut child);
                    failures.push(format!(
                        "attempt {attempt} on port {port}: {why}\n--- log ---\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    ));
                }
            }
        }
        panic!(
            "moto_server (`{}`) did not come up:\n{}",
            server.display(),
            failures.join("\n")
        );
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the server printed so far (its request log), for failure messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The aws CLI against this server, with test credentials and none of the host's
    /// AWS configuration.
    pub fn aws_command(&self) -> Command {
        let mut cmd = Command::new(aws_cli());
        cmd.arg("--endpoint-url")
            .arg(self.endpoint())
            .args(["--output", "json"])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", self.dir.path().join("aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.path().join("aws-credentials"),
            )
            .env("AWS_PAGER", "")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_REGION")
            .env_remove("AWS_ENDPOINT_URL")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `aws --endpoint-url <endpoint> <args>`; the caller checks the outcome.
    pub fn aws(&self, args: &[&str]) -> Output {
        self.aws_command()
            .args(args)
            .output()
            .unwrap_or_else(|err| panic!("running `{}`: {err}", aws_cli().display()))
    }

    /// Runs the aws CLI and panics with its output when it fails.
    pub fn aws_ok(&self, args: &[&str]) -> Output {
        let output = self.aws(args);
        assert!(
            output.status.success(),
            "`aws {}` failed ({}):\n{}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// A bucket with versioning on, as a state bucket should be.
    pub fn create_bucket(&self, name: &str) {
        self.aws_ok(&["s3api", "create-bucket", "--bucket", name]);
        self.aws_ok(&[
            "s3api",
            "put-bucket-versioning",
            "--bucket",
            name,
            "--versioning-configuration",
            "Status=Enabled",
        ]);
    }

    /// A DynamoDB table as the s3 backend's `dynamodb_table` wants it (hash key `LockID`).
    pub fn create_lock_table(&self, name: &str) {
        self.aws_ok(&[
            "dynamodb",
            "create-table",
            "--table-name",
            name,
            "--attribute-definitions",
            "AttributeName=LockID,AttributeType=S",
            "--key-schema",
            "AttributeName=LockID,KeyType=HASH",
            "--billing-mode",
            "PAY_PER_REQUEST",
        ]);
    }

    /// The lock table's item `lock_id` (for a state lock: `<bucket>/<key>`), as the
    /// DynamoDB JSON of its attributes (`{"LockID":{"S":…},"Info":{"S":…}}`), or
    /// `None` when there is no such item.
    pub fn lock_item(&self, table: &str, lock_id: &str) -> Option<serde_json::Value> {
        let key = serde_json::json!({ "LockID": { "S": lock_id } }).to_string();
        let output = self.aws_ok(&[
            "dynamodb",
            "get-item",
            "--consistent-read",
            "--table-name",
            table,
            "--key",
            &key,
        ]);
        if output.stdout.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        let response: serde_json::Value =
            serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
                panic!(
                    "`aws dynamodb get-item` printed no JSON ({err}):\n{}",
                    String::from_utf8_lossy(&output.stdout)
                )
            });
        response.get("Item").cloned()
    }

    /// The lock JSON held in a lock item's `Info` attribute (`ID`, `Operation`, `Who`, …).
    pub fn lock_info(&self, table: &str, lock_id: &str) -> Option<serde_json::Value> {
        let item = self.lock_item(table, lock_id)?;
        let info = item["Info"]["S"]
            .as_str()
            .unwrap_or_else(|| panic!("lock item `{lock_id}` has no Info string: {item}"));
        Some(serde_json::from_str(info).unwrap_or_else(|err| {
            panic!("lock item `{lock_id}` holds no lock JSON ({err}): {info}")
        }))
    }

    /// An s3 backend config for Terraform >= 1.6 (`endpoints`, `use_path_style`)
    /// against this server, locking with `dynamodb_table`.
    pub fn backend_conf(&self, bucket: &str, key: &str, table: &str) -> String {
        let endpoint = self.endpoint();
        format!(
            r#"bucket         = "{bucket}"
key            = "{key}"
region         = "us-east-1"
dynamodb_table = "{table}"
endpoints = {{ s3 = "{endpoint}", dynamodb = "{endpoint}" }}
access_key = "test"
secret_key = "test"
use_path_style = true
skip_credentials_validation = true
skip_requesting_account_id  = true
skip_metadata_api_check     = true
skip_region_validation      = true
"#
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Kills the server and everything in its process group, and reaps it.
fn stop(child: &mut Child) {
    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// Polls until `GET /moto-api/` answers, the server exits, or the time is up.
fn wait_until_up(child: &mut Child, port: u16) -> Result<(), String> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("moto_server exited early ({status})"));
        }
        if moto_api_answers(port) {
            return Ok(());
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(format!(
                "no answer on http://127.0.0.1:{port}/moto-api/ within {}s",
                START_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A port nobody listens on right now (the kernel's pick for an ephemeral bind).
fn free_port() -> u16 {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /moto-api/` answers `200`.
fn moto_api_answers(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    let status_line = String::from_utf8_lossy(&head[..read]);
    status_line.starts_with("HTTP/1.") && status_line.split_whitespace().nth(1) == Some("200")
}
