//! The s3 world the `lock` and `s3-status` sections share: a moto server (S3 + DynamoDB
//! emulator, from `scripts/test.sh --install-only`), a versioned bucket, a DynamoDB lock
//! table, and a generated project of 50 environments on the s3 backend, each initialized
//! and applied once so that it has a real state (and terraform's digest item) in moto.
//! The aws CLI is only the baseline the sections measure against, and sets moto up;
//! tfenv runs without it on PATH.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use super::{Ctx, Env, argv, generate, say};

pub const ENV_COUNT: usize = 50;
pub const BUCKET: &str = "tfstate-bench";
pub const TABLE: &str = "tf-locks";
/// Where the bench installs its own aws CLI when `scripts/test.sh` no longer does.
const OWN_AWSCLI: &str = ".cache/bench-tools/awscli";

/// The moto server this harness started; stopped when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && head[9..12] == *b"200"
}

fn start_moto(moto_server: &Path, log: &Path) -> anyhow::Result<Moto> {
    for attempt in 1..=3 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut child = Command::new(moto_server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log)?)
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .with_context(|| format!("starting `{}`", moto_server.display()))?;
        for _ in 0..200 {
            if moto_answers(port) {
                let url = format!("http://127.0.0.1:{port}");
                say(&format!("moto_server up on {url} (pid {})", child.id()));
                return Ok(Moto { child, url });
            }
            if child.try_wait()?.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        say(&format!(
            "moto_server did not come up on port {port} (attempt {attempt}):\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        ));
        let _ = child.kill();
        let _ = child.wait();
    }
    bail!("moto_server (`{}`) did not start", moto_server.display())
}

/// `export VAR=value` lines of `scripts/test.sh --install-only` → value of `var`.
fn exported(text: &str, var: &str) -> Option<PathBuf> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(&format!("export {var}="))?;
        let value = value
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .unwrap_or(value);
        Some(PathBuf::from(value.replace("\\ ", " ")))
    })
}

/// `aws --version`'s first word (`aws-cli/1.46.3`), or `None` when it does not run.
fn aws_version(aws: &Path) -> Option<String> {
    let out = Command::new(aws)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.split_whitespace().next().map(str::to_string)
}

/// The aws CLI to measure against: the one `scripts/test.sh` installs into its moto venv,
/// or, when it installs none (the tests no longer need it), one the bench installs
/// itself (`pip install awscli` into a venv of its own under .cache/bench-tools/).
/// Returns the CLI, its version and where it comes from, for the page.
fn find_aws_cli(ctx: &Ctx, exports: &str) -> anyhow::Result<(PathBuf, String, String)> {
    if let Some(aws) = exported(exports, "TFENV_TEST_AWS").filter(|p| p.is_file())
        && let Some(version) = aws_version(&aws)
    {
        return Ok((
            aws,
            version,
            "the one `scripts/test.sh --install-only` installs into its moto venv".into(),
        ));
    }
    let venv = ctx.repo.join(OWN_AWSCLI);
    let aws = venv.join("bin/aws");
    if let Some(version) = aws_version(&aws) {
        return Ok((
            aws,
            version,
            format!(
                "installed by the bench itself into `{OWN_AWSCLI}` (`pip install awscli`), as `scripts/test.sh` installs none"
            ),
        ));
    }
    say(&format!(
        "scripts/test.sh installs no aws CLI: pip install awscli into {OWN_AWSCLI} (first run only)"
    ));
    let _ = std::fs::remove_dir_all(&venv);
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .stdin(Stdio::null())
        .status()
        .context("running python3 -m venv (the baseline of the lock section is the aws CLI)")?;
    ensure!(status.success(), "python3 -m venv {OWN_AWSCLI} failed");
    let status = Command::new(venv.join("bin/python"))
        .args(["-m", "pip", "install", "--quiet", "awscli"])
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
        .stdin(Stdio::null())
        .status()
        .context("running pip install awscli")?;
    ensure!(
        status.success(),
        "pip install awscli into {OWN_AWSCLI} failed (is PyPI reachable?)"
    );
    let version = aws_version(&aws).with_context(|| format!("`{}` does not run", aws.display()))?;
    Ok((
        aws,
        version,
        format!(
            "installed by the bench itself into `{OWN_AWSCLI}` (`pip install awscli`), as `scripts/test.sh` installs none"
        ),
    ))
}

pub struct S3Project {
    moto: Moto,
    pub dir: PathBuf,
    pub envs: Vec<String>,
    /// For every process of these sections: none of the host's AWS settings (the backend
    /// config has its own), and no aws CLI added to PATH.
    pub env: Env,
    pub aws_cli: PathBuf,
    pub aws_version: String,
    /// Where the aws CLI comes from, for the page.
    pub aws_source: String,
    pub init_s: f64,
    pub apply_s: f64,
    /// Mean size of the 50 state objects in the bucket, bytes.
    pub state_avg: f64,
    /// env01's lock, put into DynamoDB as a running apply would hold it.
    pub lock_id: String,
    /// `<bucket>/env01/terraform.tfstate`: env01's lock item's key.
    pub lock_path: String,
    /// Whether a section printed `method_intro` in full already.
    described: AtomicBool,
}

impl S3Project {
    pub fn create(ctx: &Ctx) -> anyhow::Result<Self> {
        say("s3: scripts/test.sh --install-only (moto server)");
        let out = Command::new(ctx.repo.join("scripts/test.sh"))
            .arg("--install-only")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .context("running scripts/test.sh --install-only")?;
        ensure!(
            out.status.success(),
            "scripts/test.sh --install-only failed: the lock and s3-status sections need python3 (see its messages above); skip them with --only"
        );
        let exports = String::from_utf8_lossy(&out.stdout);
        let moto_server = exported(&exports, "TFENV_TEST_MOTO_SERVER")
            .context("scripts/test.sh set no TFENV_TEST_MOTO_SERVER")?;
        let (aws_cli, aws_version, aws_source) = find_aws_cli(ctx, &exports)?;
        say(&format!("aws CLI: {aws_version}, {aws_source}"));

        let tf_version = ctx.run_ok(
            &ctx.env,
            &argv([
                ctx.terraform.as_os_str(),
                "version".as_ref(),
                "-json".as_ref(),
            ]),
            None,
        )?;
        let tf_version: serde_json::Value =
            serde_json::from_slice(&tf_version.stdout).unwrap_or_default();
        let minor = tf_version["terraform_version"]
            .as_str()
            .and_then(|v| {
                let mut parts = v.split('.').map(|p| p.parse::<u64>().ok());
                Some((parts.next()??, parts.next()??))
            })
            .unwrap_or((0, 0));
        ensure!(
            minor >= (1, 6),
            "the lock and s3-status sections write s3 backend settings of Terraform >= 1.6 (endpoints, use_path_style); `{}` is older",
            ctx.terraform.display()
        );

        let mut env = ctx
            .env
            .clone()
            .set("AWS_CONFIG_FILE", ctx.tmp.join("aws-config"))
            .set(
                "AWS_SHARED_CREDENTIALS_FILE",
                ctx.tmp.join("aws-credentials"),
            )
            .set("AWS_EC2_METADATA_DISABLED", "true")
            .set("AWS_PAGER", "");
        for var in [
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL_DYNAMODB",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            env = env.remove(var);
        }

        // Empty, so that nothing of the host's ~/.aws is read (and the SDK does not
        // warn about missing files).
        std::fs::write(ctx.tmp.join("aws-config"), "")?;
        std::fs::write(ctx.tmp.join("aws-credentials"), "")?;

        let moto = start_moto(&moto_server, &ctx.tmp.join("moto.log"))?;
        let mut project = S3Project {
            moto,
            dir: ctx.tmp.join("s3-project"),
            envs: (1..=ENV_COUNT).map(|i| format!("env{i:02}")).collect(),
            env,
            aws_cli,
            aws_version,
            aws_source,
            init_s: 0.0,
            apply_s: 0.0,
            state_avg: 0.0,
            lock_id: generate::new_uuid(),
            lock_path: format!("{BUCKET}/env01/terraform.tfstate"),
            described: AtomicBool::new(false),
        };
        project.setup(ctx)?;
        Ok(project)
    }

    pub fn url(&self) -> &str {
        &self.moto.url
    }

    /// `aws --endpoint-url <moto> --output json <args>` with test credentials: what a
    /// script (and tfenv before the SDK) runs.
    pub fn aws(&self, args: &[&str]) -> Vec<OsString> {
        let mut v = argv([
            "env",
            "AWS_ACCESS_KEY_ID=test",
            "AWS_SECRET_ACCESS_KEY=test",
            "AWS_DEFAULT_REGION=us-east-1",
        ]);
        v.push(self.aws_cli.clone().into());
        v.extend(argv(["--endpoint-url", self.url(), "--output", "json"]));
        v.extend(argv(args));
        v
    }

    /// TF_DATA_DIR of `env`, where `tfenv init` put it.
    pub fn data_dir(&self, env: &str) -> PathBuf {
        self.dir.join(".terraform/tfenv").join(env)
    }

    fn setup(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let env = &self.env;
        ctx.run_ok(
            env,
            &self.aws(&["s3api", "create-bucket", "--bucket", BUCKET]),
            None,
        )?;
        ctx.run_ok(
            env,
            &self.aws(&[
                "s3api",
                "put-bucket-versioning",
                "--bucket",
                BUCKET,
                "--versioning-configuration",
                "Status=Enabled",
            ]),
            None,
        )?;
        ctx.run_ok(
            env,
            &self.aws(&[
                "dynamodb",
                "create-table",
                "--table-name",
                TABLE,
                "--attribute-definitions",
                "AttributeName=LockID,AttributeType=S",
                "--key-schema",
                "AttributeName=LockID,KeyType=HASH",
                "--billing-mode",
                "PAY_PER_REQUEST",
            ]),
            None,
        )?;

        let proj = &self.dir;
        std::fs::create_dir_all(proj.join("environments"))?;
        std::fs::write(
            proj.join("main.tf"),
            "# Generated by cargo xtask bench: the s3 backend (settings per environment).\n\
             terraform {\n  backend \"s3\" {}\n}\n\n\
             resource \"terraform_data\" \"app\" {\n  input = \"bench\"\n}\n\n\
             output \"app_id\" {\n  value = terraform_data.app.id\n}\n",
        )?;
        let mut toml = format!(
            "# Generated by cargo xtask bench: {ENV_COUNT} environments on the s3 backend.\n\n[project]\nstate_dir = \"state\"\n"
        );
        for env_name in &self.envs {
            toml.push_str(&format!(
                "\n[environments.{env_name}]\nbackend_config = \"environments/{env_name}.backend.conf\"\n"
            ));
            std::fs::write(
                proj.join(format!("environments/{env_name}.backend.conf")),
                format!(
                    "bucket         = \"{BUCKET}\"\nkey            = \"{env_name}/terraform.tfstate\"\n\
                     region         = \"us-east-1\"\ndynamodb_table = \"{TABLE}\"\n\
                     endpoints = {{ s3 = \"{url}\", dynamodb = \"{url}\" }}\n\
                     access_key = \"test\"\nsecret_key = \"test\"\nuse_path_style = true\n\
                     skip_credentials_validation = true\nskip_requesting_account_id  = true\n\
                     skip_metadata_api_check     = true\nskip_region_validation      = true\n",
                    url = self.url()
                ),
            )?;
        }
        std::fs::write(proj.join("tfenv.toml"), toml)?;
        std::fs::write(proj.join(".gitignore"), "/state/*\n.terraform/\n")?;
        generate::git_init(proj);

        say(&format!(
            "s3: tfenv init --all ({ENV_COUNT} environments on s3)"
        ));
        let mut init = ctx.tfenv_argv(proj);
        init.extend(argv(["init", "--all"]));
        let t0 = Instant::now();
        ctx.run_ok(env, &init, None)?;
        self.init_s = t0.elapsed().as_secs_f64();

        // One apply per environment, two at a time: each writes its state to the bucket
        // and its digest to the lock table, taking and releasing its DynamoDB lock.
        say(&format!(
            "s3: terraform apply in each of the {ENV_COUNT} environments"
        ));
        let t0 = Instant::now();
        let next = AtomicUsize::new(0);
        let this = &*self;
        let failures: Vec<anyhow::Error> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..ctx.cpus.clamp(1, 4))
                .map(|_| {
                    scope.spawn(|| -> anyhow::Result<()> {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(env_name) = this.envs.get(i) else {
                                return Ok(());
                            };
                            let vars = this.env.clone().set("TF_DATA_DIR", this.data_dir(env_name));
                            let apply = argv([
                                ctx.terraform.as_os_str(),
                                "apply".as_ref(),
                                "-auto-approve".as_ref(),
                                "-input=false".as_ref(),
                                "-no-color".as_ref(),
                            ]);
                            ctx.run_ok(&vars, &apply, Some(&this.dir))
                                .with_context(|| format!("terraform apply in {env_name}"))?;
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .filter_map(|w| match w.join() {
                    Ok(Ok(())) => None,
                    Ok(Err(err)) => Some(err),
                    Err(_) => Some(anyhow::anyhow!("an apply thread panicked")),
                })
                .collect()
        });
        if let Some(err) = failures.into_iter().next() {
            return Err(err);
        }
        self.apply_s = t0.elapsed().as_secs_f64();

        // Every environment has its state object now.
        let out = ctx.run_ok(
            env,
            &self.aws(&["s3api", "list-objects-v2", "--bucket", BUCKET]),
            None,
        )?;
        let listing: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("list-objects-v2 printed no JSON")?;
        let sizes: Vec<u64> = listing["Contents"]
            .as_array()
            .map(|objects| {
                objects
                    .iter()
                    .filter(|o| {
                        o["Key"]
                            .as_str()
                            .is_some_and(|k| k.ends_with("/terraform.tfstate"))
                    })
                    .filter_map(|o| o["Size"].as_u64())
                    .collect()
            })
            .unwrap_or_default();
        ensure!(
            sizes.len() == ENV_COUNT,
            "{} state objects in the bucket after the applies, not {ENV_COUNT}",
            sizes.len()
        );
        self.state_avg = sizes.iter().sum::<u64>() as f64 / ENV_COUNT as f64;

        // env01's state lock, as a terraform apply elsewhere would hold it.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_or("host".to_string(), |h| h.trim().to_string());
        let info = serde_json::json!({
            "ID": self.lock_id,
            "Operation": "OperationTypeApply",
            "Info": "",
            "Who": format!("bench@{host}"),
            "Version": "1.11.4",
            "Created": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string(),
            "Path": self.lock_path,
        });
        let item = serde_json::json!({ "LockID": { "S": self.lock_path }, "Info": { "S": info.to_string() } });
        ctx.run_ok(
            env,
            &self.aws(&[
                "dynamodb",
                "put-item",
                "--table-name",
                TABLE,
                "--item",
                &item.to_string(),
            ]),
            None,
        )?;
        say(&format!(
            "s3: init {:.1} s, applies {:.1} s, states {:.0} bytes on average; env01 locked",
            self.init_s, self.apply_s, self.state_avg
        ));
        Ok(())
    }
}

/// The setup paragraph: in full in the first section that prints it, in short after.
pub fn method_intro(project: &S3Project) -> String {
    if project.described.swap(true, Ordering::Relaxed) {
        return format!(
            "The s3 world of the section above: the moto server, the bucket `{BUCKET}`, the lock
table `{TABLE}`, and the {ENV_COUNT} environments, each applied once (env01 locked)."
        );
    }
    format!(
        "A moto server (S3 + DynamoDB emulator, from `scripts/test.sh --install-only`) on a
free loopback port, a versioned bucket `{BUCKET}` and a lock table `{TABLE}`, and a
generated project of {ENV_COUNT} environments on the s3 backend (keys
`env01/terraform.tfstate`…, `dynamodb_table`, Terraform ≥ 1.6 settings), all
initialized with `tfenv init --all` ({init:.1} s) and applied once with `terraform
apply` ({apply:.1} s for the {ENV_COUNT}, a few at a time), so each has a real state in the
bucket ({state:.0} bytes on average) and its digest item in the table. env01's lock item
is then put into DynamoDB by hand (terraform's lock JSON: ID, Operation, Who, Version,
Created, Path), as a running apply would hold it. No aws CLI is put on `PATH` for tfenv;
the aws CLI of the baselines ({version}) is {source}.",
        init = project.init_s,
        apply = project.apply_s,
        state = project.state_avg,
        version = project.aws_version,
        source = project.aws_source,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_only_exports_are_read() {
        let text = "export TFENV_TEST_AWS=/c/moto/bin/aws\nexport TFENV_TEST_MOTO_SERVER='/a b/moto_server'\n";
        assert_eq!(
            exported(text, "TFENV_TEST_AWS"),
            Some(PathBuf::from("/c/moto/bin/aws"))
        );
        assert_eq!(
            exported(text, "TFENV_TEST_MOTO_SERVER"),
            Some(PathBuf::from("/a b/moto_server"))
        );
        assert_eq!(exported(text, "TFENV_TEST_TERRAFORM"), None);
    }
}
