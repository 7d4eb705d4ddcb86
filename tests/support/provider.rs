//! The real test provider, `tfenv/tfenvtest` (tests/provider, binary
//! terraform-provider-tfenvtest): its resource `tfenvtest_file { path, content, secret }`
//! is a file on disk, so a test can make real drift by editing or deleting the file.
//!
//! scripts/test.sh builds it and lays out a provider mirror in cargo's target folder
//! (`TFENV_TEST_PROVIDER_MIRROR`); `install` points a project's terraform CLI config at
//! that mirror with a `provider_installation` block, the way users install providers,
//! so `terraform init` installs it and writes `.terraform.lock.hcl`.
//!
//! ```ignore
//! let project = provider::demo();                      // dev, staging, production
//! project.tfenv_real().args(["deploy", "dev", "--yes"]).assert().success();
//! std::fs::write(provider::managed_file(&project, "dev"), "edited")?; // `update` drift
//! std::fs::remove_file(provider::managed_file(&project, "dev"))?;     // `delete` drift
//! ```

use std::path::{Path, PathBuf};

use super::Project;

/// The provider's source address in `required_providers`.
pub const SOURCE: &str = "tfenv/tfenvtest";

/// The value `demo()` gives each file's sensitive `secret` attribute (written to
/// `<file>.secret`): a test asserts it appears in no output.
pub const SECRET: &str = "tfenvtest-secret-0b9f3e";

/// The content `demo()` writes into each environment's file until a test changes
/// `app_content` in a var file.
pub const CONTENT: &str = "v1";

const SETUP: &str = "the test provider terraform-provider-tfenvtest is not built and installed: \
run `scripts/test.sh`, or `eval \"$(scripts/test.sh --install-only)\"` before `cargo test` \
(it runs `cargo build -p tfenvtest-provider` and sets TFENV_TEST_PROVIDER_MIRROR)";

/// The provider mirror scripts/test.sh made (`TFENV_TEST_PROVIDER_MIRROR`, else
/// `target/tfenvtest-mirror`), checked to hold a built provider. Panics, naming the
/// set-up command, when it does not.
pub fn mirror() -> PathBuf {
    let mirror = match std::env::var_os("TFENV_TEST_PROVIDER_MIRROR") {
        Some(mirror) => PathBuf::from(mirror),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tfenvtest-mirror"),
    };
    let versions = mirror.join("registry.terraform.io/tfenv/tfenvtest");
    let built = std::fs::read_dir(&versions)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|version| std::fs::read_dir(version.path()).into_iter().flatten())
        .flatten()
        .flat_map(|platform| std::fs::read_dir(platform.path()).into_iter().flatten())
        .flatten()
        // A link to target/…/terraform-provider-tfenvtest: `is_file` follows it.
        .any(|bin| {
            bin.file_name()
                .to_string_lossy()
                .starts_with("terraform-provider-tfenvtest_v")
                && bin.path().is_file()
        });
    assert!(
        built,
        "no built provider in the mirror `{}`: {SETUP}",
        mirror.display()
    );
    mirror
}

/// A terraform CLI config that installs `tfenv/tfenvtest` from the mirror, and only it
/// (every other provider goes to the registry, which is unreachable here).
pub fn cli_config_text() -> String {
    let mirror = mirror();
    format!(
        r#"disable_checkpoint = true

provider_installation {{
  filesystem_mirror {{
    path    = "{mirror}"
    include = ["registry.terraform.io/{SOURCE}"]
  }}
  direct {{
    exclude = ["registry.terraform.io/{SOURCE}"]
  }}
}}
"#,
        mirror = mirror.display()
    )
}

/// Makes every terraform run in `project` (through tfenv or `project.terraform(..)`)
/// install the provider from the mirror: rewrites the project's CLI config.
pub fn install(project: &Project) {
    std::fs::write(project.cli_config(), cli_config_text()).unwrap();
}

/// The `terraform` block of a root module that uses the provider, with a local backend.
pub const TERRAFORM_BLOCK: &str = r#"terraform {
  required_version = ">= 1.0"
  backend "local" {}
  required_providers {
    tfenvtest = {
      source = "tfenv/tfenvtest"
    }
  }
}
"#;

/// `module()` with another backend, e.g. `module_with_backend("s3")` (an empty
/// `backend "s3" {}` block: the settings come from each environment's backend config).
/// Its var files must set `environment` and `files_dir`.
pub fn module_with_backend(backend: &str) -> String {
    module().replacen(
        "backend \"local\" {}",
        &format!("backend \"{backend}\" {{}}"),
        1,
    )
}

/// The root module of `demo()`, on the local backend: the quickstart's variables (so
/// the demo's var files still fit), plus one `tfenvtest_file.app` per environment at
/// `<files_dir>/<environment>.conf` holding `app_content` (default `CONTENT`), with
/// the sensitive `file_secret` (default `SECRET`) in `<…>.conf.secret`; outputs
/// `environment` and `file`. Terraform ≥ 1.0.
pub fn module() -> String {
    format!(
        r#"{TERRAFORM_BLOCK}
variable "environment" {{
  type = string
}}

variable "instance_count" {{
  type    = number
  default = 1
}}

variable "feature_flags" {{
  type    = map(bool)
  default = {{}}
}}

variable "api_token" {{
  type      = string
  default   = "demo-token-not-a-real-secret"
  sensitive = true
}}

variable "files_dir" {{
  type        = string
  description = "An absolute folder for the managed files (set in environments/common.tfvars)."
}}

variable "app_content" {{
  type    = string
  default = "{CONTENT}"
}}

variable "file_secret" {{
  type      = string
  default   = "{SECRET}"
  sensitive = true
}}

resource "tfenvtest_file" "app" {{
  path    = "${{var.files_dir}}/${{var.environment}}.conf"
  content = var.app_content
  secret  = var.file_secret
}}

output "environment" {{
  value = var.environment
}}

output "file" {{
  value = tfenvtest_file.app.id
}}
"#
    )
}

/// The demo project (tfenv.toml with dev, staging, production on the local backend)
/// with `module()` as its root and the provider installed (`install`): a deploy of an
/// environment creates `managed_file(&project, env)`.
pub fn demo() -> Project {
    let project = Project::demo();
    install(&project);
    project.write("examples/quickstart/main.tf", &module());
    let files = project.join("files");
    std::fs::create_dir_all(&files).unwrap();
    let common = project.read("environments/common.tfvars");
    project.write(
        "environments/common.tfvars",
        &format!("{common}\nfiles_dir = \"{}\"\n", files.display()),
    );
    project
}

/// The file `tfenvtest_file.app` manages for `env` in a `demo()` project.
pub fn managed_file(project: &Project, env: &str) -> PathBuf {
    project.join(&format!("files/{env}.conf"))
}

/// Where the provider keeps a file's sensitive `secret`: `<file>.secret`.
pub fn secret_file(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".secret");
    PathBuf::from(name)
}
