//! Fake `az` and `gcloud` CLIs for the azurerm and gcs backends, which have no emulator
//! here. `fake_cli` installs a script that logs each call (its arguments, and the
//! environment variables a test names) and runs a body; `FakeCloud` is such a script
//! whose body is a small storage service: it keeps blobs/objects and every version of
//! them in a folder of the project, answers the calls tfenv makes (lock reads, the
//! store's uploads, listings, downloads and versions) with the JSON the real CLI prints,
//! and answers any other argv with exit 2 and `unexpected …` on stderr, so a test fails
//! when tfenv calls a CLI in a way the real one would not take.
//!
//! What the fakes accept, exactly:
//! - az, the management plane `tfenv bootstrap` uses, stateful (what one call sets the
//!   next reads), every call with `--output json [--subscription S]`: `group show|create`,
//!   `storage account show|check-name|create|update`, `storage account
//!   blob-service-properties show|update`, and `storage container
//!   exists|show|create|set-permission` (also `--auth-mode login`). A group or account
//!   that was never created, or was created in another subscription (`--subscription`,
//!   else az's default), answers as az does (`ResourceGroupNotFound` /
//!   `ResourceNotFound`, exit 3); an account `seed`ed or created starts as Azure makes
//!   one (blob versioning `null`, soft delete off) and `blob-service-properties show` of
//!   any other account name says blob versioning on unless `set_versioning(A, false)`.
//! - az: `storage account blob-service-properties show --account-name A
//!   [--resource-group G] --output json` (blob versioning on unless
//!   `set_versioning(A, false)`);
//!   `storage blob upload|list|download|show --account-name A --container-name C`
//!   plus, per verb, `--name N`, `--file F`, `--overwrite true|false`, `--no-progress`,
//!   `--prefix P`, `--num-results *`, `--include v`, `--output json`, `--version-id V`,
//!   `--start-range 0 --end-range E`, and `--auth-mode login` anywhere.
//! - gcloud: `storage cp SRC DST [--if-generation-match=0]`, `storage cat [--range=A-B]
//!   URL`, `storage objects list URL --format=json` (URL an object or `<prefix>**`),
//!   `storage objects describe URL --format=json`, `storage buckets describe gs://B
//!   --format=json` (versioning on unless `set_versioning(B, false)`);
//!   `gs://bucket/name#generation` for a generation; `storage buckets create gs://B
//!   [--location=L] [--uniform-bucket-level-access] [--public-access-prevention]` and
//!   `storage buckets update gs://B` with `--[no-]versioning`,
//!   `--uniform-bucket-level-access`, `--public-access-prevention`. After
//!   `nothing_exists()` a bucket exists only once created (`describe` of another is
//!   gcloud's `not found: 404`); a created bucket has no `versioning_enabled` until set.
//! - both: `fail(argv prefix, …)` makes every call whose argv starts with the prefix
//!   print the given output and exit with the given code (once, or every time), before
//!   the fake looks at it otherwise: a refusal, a 409, a CLI without credentials.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Project;

/// A fake CLI at `bin/<name>` that logs its arguments (one per line, `arg:` prefixed)
/// and the environment variables `env_vars` (`env:NAME=value`, `<unset>` when unset)
/// to `<name>.log`, then runs `body`. With `FAKE_NO_LOG=1` it logs nothing (a test
/// seeding the fake's storage through the fake itself).
pub fn fake_cli(project: &Project, name: &str, env_vars: &[&str], body: &str) -> PathBuf {
    let log = project.join(&format!("{name}.log"));
    // One record, written with one `printf`: calls running at once (tfenv reads several
    // versions concurrently) append whole records, never interleaved lines.
    let env_lines: String = env_vars
        .iter()
        .map(|var| format!("record+=$(printf 'env:{var}=%s\\n_' \"${{{var}-<unset>}}\"); record=${{record%_}}\n"))
        .collect();
    project.script(
        &format!("bin/{name}"),
        &format!(
            "if [ -z \"$FAKE_NO_LOG\" ]; then\nrecord=$(printf -- '--- call\\n'; printf 'arg:%s\\n' \"$@\"; printf _); record=${{record%_}}\n{env_lines}record+=$'--- end\\n'\nprintf '%s' \"$record\" >> '{log}'\nfi\n{body}",
            log = log.display()
        ),
    );
    log
}

/// The calls a fake logged: for each, its arguments and logged environment.
pub fn calls(log: &Path) -> Vec<(Vec<String>, Vec<String>)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.split("--- call\n")
        // Only whole records: a fake stopped while it logged (tfenv kills what it started
        // and left running on its way out) leaves a record without its end line.
        .filter(|c| c.contains("--- end\n"))
        .map(|call| {
            let mut args = Vec::new();
            let mut env = Vec::new();
            for line in call.lines() {
                if let Some(arg) = line.strip_prefix("arg:") {
                    args.push(arg.to_string());
                } else if let Some(var) = line.strip_prefix("env:") {
                    env.push(var.to_string());
                }
            }
            (args, env)
        })
        .collect()
}

/// The value after `flag` in `args`.
pub fn flag<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// A fake `az` or `gcloud` with its storage in the project's `cloud/<cli>/` folder.
pub struct FakeCloud {
    /// The log of the calls tfenv made (see `calls`).
    pub log: PathBuf,
    /// `cloud/az/<account>/<container>/` or `cloud/gcloud/<bucket>/`.
    pub root: PathBuf,
    bin: PathBuf,
    cli: &'static str,
}

impl FakeCloud {
    /// `bin/az`, a storage account service: blobs with versions (blob versioning on).
    pub fn az(project: &Project, env_vars: &[&str]) -> FakeCloud {
        let root = project.join("cloud/az");
        std::fs::create_dir_all(&root).unwrap();
        let log = fake_cli(
            project,
            "az",
            env_vars,
            &AZ.replace("@ROOT@", &root.display().to_string()),
        );
        FakeCloud {
            log,
            root,
            bin: project.join("bin/az"),
            cli: "az",
        }
    }

    /// `bin/gcloud`, Cloud Storage: objects with generations (object versioning on).
    pub fn gcloud(project: &Project, env_vars: &[&str]) -> FakeCloud {
        let root = project.join("cloud/gcloud");
        std::fs::create_dir_all(&root).unwrap();
        let log = fake_cli(
            project,
            "gcloud",
            env_vars,
            &GCLOUD.replace("@ROOT@", &root.display().to_string()),
        );
        FakeCloud {
            log,
            root,
            bin: project.join("bin/gcloud"),
            cli: "gcloud",
        }
    }

    /// Turns object versioning of storage account (az) or bucket (gcloud) `name` on or
    /// off, as the account's or bucket's owner would: what `blob-service-properties
    /// show` / `buckets describe` then say.
    pub fn set_versioning(&self, name: &str, on: bool) {
        let marker = self.root.join(name).join(".versioning-off");
        std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
        if on {
            let _ = std::fs::remove_file(marker);
        } else {
            std::fs::write(marker, "").unwrap();
        }
    }

    /// Runs the fake with `args` without logging the call (seeding what exists before
    /// the test's tfenv runs: `group create …`, `storage buckets create …`); it must
    /// succeed.
    pub fn seed(&self, args: &[&str]) {
        let output = Command::new(&self.bin)
            .env("FAKE_NO_LOG", "1")
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "seeding with {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// From now on a bucket exists only once created (gcloud; az's groups and accounts
    /// always are).
    pub fn nothing_exists(&self) {
        std::fs::write(self.root.join(".explicit"), "").unwrap();
    }

    /// Every later call whose arguments start with the words `prefix` prints `stdout` and
    /// `stderr` and exits with `code`, every time or (`once`) the first time only.
    pub fn fail(&self, prefix: &str, code: i32, stdout: &str, stderr: &str, once: bool) {
        let faults = self.root.join(".faults");
        std::fs::create_dir_all(&faults).unwrap();
        let dir = faults.join(format!(
            "{:03}",
            std::fs::read_dir(&faults).unwrap().count()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("argv"), prefix).unwrap();
        std::fs::write(dir.join("code"), code.to_string()).unwrap();
        std::fs::write(dir.join("stdout"), stdout).unwrap();
        std::fs::write(dir.join("stderr"), stderr).unwrap();
        if once {
            std::fs::write(dir.join("once"), "").unwrap();
        }
    }

    /// The calls tfenv made.
    pub fn calls(&self) -> Vec<(Vec<String>, Vec<String>)> {
        calls(&self.log)
    }

    /// Writes `bytes` as a new version of `at` the way another writer would (terraform
    /// writing the state), through the fake itself and without logging: `at` is
    /// `<account>/<container>/<blob>` (az) or `<bucket>/<object>` (gcloud).
    pub fn put(&self, at: &str, bytes: &[u8]) {
        let source = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(source.path(), bytes).unwrap();
        let file = source.path().display().to_string();
        let mut command = Command::new(&self.bin);
        command.env("FAKE_NO_LOG", "1");
        match self.cli {
            "az" => {
                let mut parts = at.splitn(3, '/');
                let (account, container, blob) = (
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                );
                command.args([
                    "storage",
                    "blob",
                    "upload",
                    "--account-name",
                    account,
                    "--container-name",
                    container,
                    "--name",
                    blob,
                    "--file",
                    &file,
                    "--overwrite",
                    "true",
                ]);
            }
            _ => {
                command.args(["storage", "cp", &file, &format!("gs://{at}")]);
            }
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "seeding {at}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The current content of `at` (as `put` names it), if it exists.
    pub fn get(&self, at: &str) -> Option<Vec<u8>> {
        std::fs::read(self.current(at)).ok()
    }

    /// The names under `prefix` that exist now (`<account>/<container>/…` or
    /// `<bucket>/…`), in name order.
    pub fn names(&self, prefix: &str) -> Vec<String> {
        let (base, current) = match self.cli {
            "az" => {
                let mut parts = prefix.splitn(3, '/');
                let (account, container) = (parts.next().unwrap(), parts.next().unwrap());
                (format!("{account}/{container}/"), "blobs")
            }
            _ => {
                let bucket = prefix.split('/').next().unwrap();
                (format!("{bucket}/"), "objects")
            }
        };
        let rest = prefix.strip_prefix(&base).unwrap_or("");
        let dir = self.root.join(base.trim_end_matches('/')).join(current);
        let mut names = Vec::new();
        walk(&dir, &dir, &mut names);
        names.retain(|n| n.starts_with(rest));
        names.sort();
        names
    }

    fn current(&self, at: &str) -> PathBuf {
        match self.cli {
            "az" => {
                let mut parts = at.splitn(3, '/');
                let (account, container, blob) = (
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                );
                self.root
                    .join(account)
                    .join(container)
                    .join("blobs")
                    .join(blob)
            }
            _ => {
                let (bucket, object) = at.split_once('/').unwrap();
                self.root.join(bucket).join("objects").join(object)
            }
        }
    }
}

fn walk(base: &Path, dir: &Path, names: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(base, &path, names);
        } else {
            names.push(path.strip_prefix(base).unwrap().display().to_string());
        }
    }
}

/// The fake az's storage service (bash and coreutils only). `@ROOT@` is its folder:
/// `<account>/<container>/blobs/<blob>` is a blob's current content, and
/// `<account>/<container>/versions/<blob>/<version ID>` every version of it.
const AZ: &str = r#"ROOT='@ROOT@'
unexpected() { printf 'unexpected: %s\n' "$*" >&2; exit 2; }
if [ -d "$ROOT/.faults" ]; then
  for fault in "$ROOT"/.faults/*; do
    [ -f "$fault/argv" ] || continue
    case "$* " in
      "$(cat "$fault/argv") "*)
        cat "$fault/stdout"; cat "$fault/stderr" >&2; code=$(cat "$fault/code")
        [ -f "$fault/once" ] && rm -rf "$fault"
        exit "$code" ;;
    esac
  done
fi
json_text() { local t=${1//\\/\\\\}; t=${t//\"/\\\"}; printf '"%s"' "$t"; }
declare -A opt
parse() { # the flags allowed (one string); parses "${args[@]}" as --flag value pairs into opt
  local allowed=" $1 " i=0 n=${#args[@]} f
  opt=()
  while [ $i -lt $n ]; do
    f=${args[$i]}
    case "$allowed" in *" $f "*) ;; *) unexpected "argument '$f' to az $cmd" ;; esac
    [ $((i + 1)) -lt $n ] || unexpected "$f without a value"
    [ -z "${opt[$f]+x}" ] || unexpected "$f twice"
    opt[$f]=${args[$((i + 1))]}
    i=$((i + 2))
  done
  [ "${opt[--output]-}" = json ] || unexpected "az $cmd without --output json"
  [ -z "${opt[--auth-mode]+x}" ] || [ "${opt[--auth-mode]}" = login ] || unexpected "--auth-mode ${opt[--auth-mode]}"
  SUBSCRIPTION=${opt[--subscription]-default}
}
need() { local f; for f in "$@"; do [ -n "${opt[$f]-}" ] || unexpected "az $cmd without $f"; done; }
bool() { [ -z "${opt[$1]+x}" ] && return 0; case "${opt[$1]}" in true|false) ;; *) unexpected "$1 ${opt[$1]}" ;; esac; }
prop() { if [ -f "$ROOT/$1/.props/$2" ]; then cat "$ROOT/$1/.props/$2"; else printf '%s' "$3"; fi; }
setprop() { mkdir -p "$ROOT/$1/.props"; printf '%s' "$3" > "$ROOT/$1/.props/$2"; }
SUB=/subscriptions/00000000-0000-0000-0000-000000000000
group_missing() { printf "ERROR: (ResourceGroupNotFound) Resource group '%s' could not be found.\nCode: ResourceGroupNotFound\nMessage: Resource group '%s' could not be found.\n" "$1" "$1" >&2; exit 3; }
account_missing() { printf "ERROR: (ResourceNotFound) The Resource 'Microsoft.Storage/storageAccounts/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix\nCode: ResourceNotFound\nMessage: The Resource 'Microsoft.Storage/storageAccounts/%s' under resource group '%s' was not found.\n" "$1" "$2" "$1" "$2" >&2; exit 3; }
group_here() { [ -f "$ROOT/.groups/$1" ] && [ "$(cat "$ROOT/.groups/$1.sub")" = "$SUBSCRIPTION" ]; }
account_here() { [ -f "$ROOT/$1/.account" ] && [ "$(cat "$ROOT/$1/.sub")" = "$SUBSCRIPTION" ]; }
in_group() { # account, group: both exist in the call's subscription, the account in the group
  group_here "$2" || group_missing "$2"
  account_here "$1" && [ "$(cat "$ROOT/$1/.account")" = "$2" ] || account_missing "$1" "$2"
}
group_json() { printf '{"id":"%s/resourceGroups/%s","location":"%s","managedBy":null,"name":"%s","properties":{"provisioningState":"Succeeded"},"tags":null,"type":"Microsoft.Resources/resourceGroups"}\n' "$SUB" "$1" "$(cat "$ROOT/.groups/$1")" "$1"; }
account_json() {
  printf '{"allowBlobPublicAccess":%s,"enableHttpsTrafficOnly":%s,"id":"%s/resourceGroups/%s/providers/Microsoft.Storage/storageAccounts/%s","kind":%s,"location":%s,"minimumTlsVersion":%s,"name":"%s","provisioningState":"Succeeded","resourceGroup":"%s","sku":{"name":%s,"tier":"Standard"},"type":"Microsoft.Storage/storageAccounts"}\n' \
    "$(prop "$1" allowBlobPublicAccess null)" "$(prop "$1" enableHttpsTrafficOnly null)" "$SUB" "$2" "$1" "$(prop "$1" kind '"StorageV2"')" \
    "$(prop "$1" location null)" "$(prop "$1" minimumTlsVersion null)" "$1" "$2" "$(prop "$1" sku null)"
}
blob_service_json() { # account
  local v; v=$(prop "$1" versioning null); [ -f "$ROOT/$1/.versioning-off" ] && v=false
  printf '{"changeFeed":null,"containerDeleteRetentionPolicy":%s,"deleteRetentionPolicy":%s,"isVersioningEnabled":%s,"name":"default","type":"Microsoft.Storage/storageAccounts/blobServices"}\n' \
    "$(prop "$1" containerDeleteRetentionPolicy '{"days":null,"enabled":false}')" \
    "$(prop "$1" deleteRetentionPolicy '{"allowPermanentDelete":false,"days":null,"enabled":false}')" "$v"
}
case "$1 $2" in
  "group show")
    cmd="group show"; args=("${@:3}"); parse "--name --output --subscription"; need --name
    group_here "${opt[--name]}" || group_missing "${opt[--name]}"
    group_json "${opt[--name]}"; exit 0 ;;
  "group create")
    cmd="group create"; args=("${@:3}"); parse "--name --location --output --subscription"; need --name --location
    mkdir -p "$ROOT/.groups"; printf '%s' "${opt[--location]}" > "$ROOT/.groups/${opt[--name]}"
    printf '%s' "$SUBSCRIPTION" > "$ROOT/.groups/${opt[--name]}.sub"
    group_json "${opt[--name]}"; exit 0 ;;
  "storage container")
    cmd="storage container $3"; args=("${@:4}")
    parse "--name --account-name --public-access --output --subscription --auth-mode"; need --name --account-name
    a=${opt[--account-name]}; c=${opt[--name]}; dir="$ROOT/$a/$c"
    if [ ! -f "$ROOT/$a/.account" ]; then
      printf "ERROR: <urllib3.connection.HTTPSConnection object at 0x7f0000000000>: Failed to establish a new connection: [Errno -2] Name or service not known\n" >&2; exit 1
    fi
    case "$3" in
      exists|show) [ -z "${opt[--public-access]+x}" ] || unexpected "--public-access to az $cmd" ;;
      create|set-permission) case "${opt[--public-access]-}" in off|blob|container) ;; *) unexpected "az $cmd without --public-access off|blob|container" ;; esac ;;
      *) unexpected "az $cmd" ;;
    esac
    case "$3" in
      exists) if [ -f "$dir/.container" ]; then echo '{"exists":true}'; else echo '{"exists":false}'; fi ;;
      show|set-permission)
        if [ ! -f "$dir/.container" ]; then
          printf 'ERROR: The specified container does not exist.\nRequestId:00000000-0000-0000-0000-000000000000\nTime:2026-11-30T12:00:00.0000000Z\nErrorCode:ContainerNotFound\n' >&2; exit 1
        fi
        if [ "$3" = set-permission ]; then
          printf '%s' "${opt[--public-access]}" > "$dir/.container"
          echo '{"etag":"\"0x2\"","lastModified":"2026-11-30T10:00:00+00:00"}'
        else
          p=$(cat "$dir/.container"); if [ "$p" = off ]; then p=null; else p="\"$p\""; fi
          printf '{"metadata":{},"name":"%s","properties":{"etag":"\\"0x1\\"","hasImmutabilityPolicy":false,"hasLegalHold":false,"lastModified":"2026-11-30T10:00:00+00:00","lease":{"duration":null,"state":"available","status":"unlocked"},"publicAccess":%s}}\n' "$c" "$p"
        fi ;;
      create)
        if [ -f "$dir/.container" ]; then echo '{"created":false}'; exit 0; fi
        mkdir -p "$dir"; printf '%s' "${opt[--public-access]}" > "$dir/.container"; echo '{"created":true}' ;;
    esac
    exit 0 ;;
  "storage account")
    if [ "$3" = blob-service-properties ]; then cmd="storage account blob-service-properties $4"; args=("${@:5}")
    else cmd="storage account $3"; args=("${@:4}"); fi
    case "$cmd" in
      "storage account show")
        parse "--name --resource-group --output --subscription"; need --name --resource-group
        in_group "${opt[--name]}" "${opt[--resource-group]}"
        account_json "${opt[--name]}" "${opt[--resource-group]}" ;;
      "storage account check-name")
        parse "--name --output --subscription"; need --name; a=${opt[--name]}
        if [ -f "$ROOT/$a/.account" ] || [ -f "$ROOT/.taken/$a" ]; then
          printf '{"message":"The storage account named %s is already taken.","nameAvailable":false,"reason":"AlreadyExists"}\n' "$a"
        else
          echo '{"message":null,"nameAvailable":true,"reason":null}'
        fi ;;
      "storage account create")
        parse "--name --resource-group --kind --sku --min-tls-version --allow-blob-public-access --https-only --location --output --subscription"
        need --name --resource-group --kind --sku
        bool --allow-blob-public-access; bool --https-only
        a=${opt[--name]}; g=${opt[--resource-group]}
        case "${opt[--kind]}" in StorageV2|Storage|BlobStorage|BlockBlobStorage|FileStorage) ;; *) unexpected "--kind ${opt[--kind]}" ;; esac
        case "${opt[--sku]}" in Standard_LRS|Standard_GRS|Standard_RAGRS|Standard_ZRS|Standard_GZRS|Standard_RAGZRS|Premium_LRS|Premium_ZRS) ;; *) unexpected "--sku ${opt[--sku]}" ;; esac
        case "${opt[--min-tls-version]-TLS1_0}" in TLS1_0|TLS1_1|TLS1_2|TLS1_3) ;; *) unexpected "--min-tls-version ${opt[--min-tls-version]}" ;; esac
        group_here "$g" || group_missing "$g"
        if [ -f "$ROOT/$a/.account" ] || [ -f "$ROOT/.taken/$a" ]; then
          printf "ERROR: (StorageAccountAlreadyTaken) The storage account named %s is already taken.\nCode: StorageAccountAlreadyTaken\nMessage: The storage account named %s is already taken.\n" "$a" "$a" >&2; exit 1
        fi
        mkdir -p "$ROOT/$a"; printf '%s' "$g" > "$ROOT/$a/.account"; printf '%s' "$SUBSCRIPTION" > "$ROOT/$a/.sub"
        setprop "$a" kind "\"${opt[--kind]}\""; setprop "$a" sku "\"${opt[--sku]}\""
        setprop "$a" location "\"${opt[--location]-$(cat "$ROOT/.groups/$g")}\""
        # What Azure gives an account created without the flags: the flags must say it.
        setprop "$a" minimumTlsVersion "\"${opt[--min-tls-version]-TLS1_0}\""
        setprop "$a" allowBlobPublicAccess "${opt[--allow-blob-public-access]-true}"
        setprop "$a" enableHttpsTrafficOnly "${opt[--https-only]-true}"
        account_json "$a" "$g" ;;
      "storage account update")
        parse "--name --resource-group --min-tls-version --allow-blob-public-access --https-only --output --subscription"
        need --name --resource-group; bool --allow-blob-public-access; bool --https-only
        a=${opt[--name]}; in_group "$a" "${opt[--resource-group]}"
        [ -n "${opt[--min-tls-version]+x}${opt[--allow-blob-public-access]+x}${opt[--https-only]+x}" ] || unexpected "az $cmd that sets nothing"
        [ -z "${opt[--min-tls-version]+x}" ] || setprop "$a" minimumTlsVersion "\"${opt[--min-tls-version]}\""
        [ -z "${opt[--allow-blob-public-access]+x}" ] || setprop "$a" allowBlobPublicAccess "${opt[--allow-blob-public-access]}"
        [ -z "${opt[--https-only]+x}" ] || setprop "$a" enableHttpsTrafficOnly "${opt[--https-only]}"
        account_json "$a" "${opt[--resource-group]}" ;;
      "storage account blob-service-properties update")
        parse "--account-name --resource-group --enable-versioning --enable-delete-retention --delete-retention-days --enable-container-delete-retention --container-delete-retention-days --output --subscription"
        need --account-name --resource-group
        bool --enable-versioning; bool --enable-delete-retention; bool --enable-container-delete-retention
        a=${opt[--account-name]}; in_group "$a" "${opt[--resource-group]}"
        [ -n "${opt[--enable-versioning]+x}${opt[--enable-delete-retention]+x}${opt[--enable-container-delete-retention]+x}" ] || unexpected "az $cmd that sets nothing"
        if [ -n "${opt[--enable-versioning]+x}" ]; then
          setprop "$a" versioning "${opt[--enable-versioning]}"
          [ "${opt[--enable-versioning]}" = true ] && rm -f "$ROOT/$a/.versioning-off"
        fi
        for kind in delete container-delete; do
          enable=${opt[--enable-$kind-retention]-}; days=${opt[--$kind-retention-days]-}
          [ -n "$enable" ] || { [ -z "$days" ] || unexpected "--$kind-retention-days without --enable-$kind-retention"; continue; }
          if [ "$enable" = true ]; then
            case "$days" in [1-9]|[1-9][0-9]|[1-3][0-9][0-9]) ;; *) unexpected "--enable-$kind-retention true without --$kind-retention-days 1..365" ;; esac
            policy="{\"days\":$days,\"enabled\":true}"
          else
            policy='{"days":null,"enabled":false}'
          fi
          if [ $kind = delete ]; then setprop "$a" deleteRetentionPolicy "$policy"; else setprop "$a" containerDeleteRetentionPolicy "$policy"; fi
        done
        blob_service_json "$a" ;;
      "storage account blob-service-properties show")
        parse "--account-name --resource-group --output --subscription"; need --account-name; a=${opt[--account-name]}
        if [ -f "$ROOT/$a/.account" ]; then
          account_here "$a" || account_missing "$a" "${opt[--resource-group]-?}"
          [ -z "${opt[--resource-group]-}" ] || in_group "$a" "${opt[--resource-group]}"
          blob_service_json "$a"
        else
          on=true; [ -f "$ROOT/$a/.versioning-off" ] && on=false
          printf '{"changeFeed":null,"deleteRetentionPolicy":{"days":7,"enabled":true},"isVersioningEnabled":%s,"name":"default","type":"Microsoft.Storage/storageAccounts/blobServices"}\n' "$on"
        fi ;;
      *) unexpected "az $*" ;;
    esac
    exit 0 ;;
esac
[ "$1 $2" = "storage blob" ] || unexpected "az $*"
verb=$3; shift 3
given=' '; account=; container=; name=; file=; prefix=; version=; start=; end=; overwrite=; include=; output=; num=
while [ $# -gt 0 ]; do
  case "$1" in
    --no-progress) given="$given$1 "; shift; continue ;;
    --account-name|--container-name|--name|--file|--prefix|--version-id|--start-range|--end-range|--overwrite|--include|--output|--num-results|--auth-mode)
      [ $# -ge 2 ] || unexpected "$1 without a value"
      given="$given$1 " ;;
    *) unexpected "argument '$1' to az storage blob $verb" ;;
  esac
  case "$1" in
    --account-name) account=$2 ;; --container-name) container=$2 ;; --name) name=$2 ;;
    --file) file=$2 ;; --prefix) prefix=$2 ;; --version-id) version=$2 ;;
    --start-range) start=$2 ;; --end-range) end=$2 ;; --overwrite) overwrite=$2 ;;
    --include) include=$2 ;; --output) output=$2 ;; --num-results) num=$2 ;;
    --auth-mode) [ "$2" = login ] || unexpected "--auth-mode $2" ;;
  esac
  shift 2
done
allow() { for g in $given; do case " $* --account-name --container-name --auth-mode " in *" $g "*) ;; *) unexpected "argument '$g' to az storage blob $verb" ;; esac; done; }
[ -n "$account" ] && [ -n "$container" ] || unexpected "az storage blob $verb without --account-name and --container-name"
base="$ROOT/$account/$container"
mkdir -p "$base/blobs" "$base/versions"
json_text() { local t=${1//\\/\\\\}; t=${t//\"/\\\"}; printf '"%s"' "$t"; }
blob_json() { # name, content file, version ID, isCurrentVersion
  printf '{"container":%s,"content":"","deleted":false,"isCurrentVersion":%s,"metadata":{},"name":%s,"properties":{"blobType":"BlockBlob","contentLength":%s,"creationTime":"%s","lastModified":"%s","lease":{"duration":null,"state":"available","status":"unlocked"}},"snapshot":null,"versionId":%s}' \
    "$(json_text "$container")" "$4" "$(json_text "$1")" "$(wc -c < "$2" | tr -d ' ')" \
    "$(date -u -r "$2" +%Y-%m-%dT%H:%M:%S+00:00)" "$(date -u -r "$2" +%Y-%m-%dT%H:%M:%S+00:00)" "$3"
}
latest() { ls "$base/versions/$1" 2>/dev/null | LC_ALL=C sort | tail -n 1; }
not_found() { printf 'ERROR: The specified blob does not exist.\nRequestId:00000000-0000-0000-0000-000000000000\nTime:2026-11-30T12:00:00.0000000Z\nErrorCode:BlobNotFound\n' >&2; exit 1; }
case "$verb" in
  upload)
    allow --name --file --overwrite --no-progress
    [ -n "$name" ] && [ -f "$file" ] || unexpected "upload needs --name and an existing --file"
    case "$overwrite" in true|false) ;; *) unexpected "upload without --overwrite true|false" ;; esac
    exec 9> "$ROOT/.lock"; flock 9
    if [ "$overwrite" = false ] && [ -f "$base/blobs/$name" ]; then
      printf 'ERROR: The specified blob already exists.\nRequestId:00000000-0000-0000-0000-000000000000\nTime:2026-11-30T12:00:00.0000000Z\nErrorCode:BlobAlreadyExists\nIf you want to overwrite the existing one, please add --overwrite in your command.\n' >&2
      exit 1
    fi
    n=$(( $(cat "$ROOT/.counter" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$ROOT/.counter"
    vid="2026-11-30T10:00:00.$(printf %07d "$n")Z"
    mkdir -p "$(dirname "$base/blobs/$name")" "$base/versions/$name"
    cp "$file" "$base/versions/$name/$vid"
    cp "$file" "$base/blobs/$name.tmp$$" && mv "$base/blobs/$name.tmp$$" "$base/blobs/$name"
    printf '{"etag":"\\"0x1\\"","lastModified":"2026-11-30T10:00:00+00:00","version_id":"%s"}\n' "$vid" ;;
  list)
    allow --prefix --num-results --include --output
    [ "$output" = json ] || unexpected "list without --output json"
    [ "$num" = '*' ] || unexpected "list without --num-results * (a listing would stop at 5000)"
    first=1; printf '['
    if [ -z "$include" ]; then
      ( cd "$base/blobs" && find . -type f | sed 's|^\./||' | LC_ALL=C sort ) | while IFS= read -r n; do
        case "$n" in "$prefix"*) ;; *) continue ;; esac
        [ $first = 1 ] || printf ','; first=0
        blob_json "$n" "$base/blobs/$n" "\"$(latest "$n")\"" true
      done
    else
      [ "$include" = v ] || unexpected "--include $include"
      ( cd "$base/versions" && find . -type f | sed 's|^\./||' | LC_ALL=C sort ) | while IFS= read -r p; do
        n=${p%/*}; vid=${p##*/}
        case "$n" in "$prefix"*) ;; *) continue ;; esac
        current=null
        [ -f "$base/blobs/$n" ] && [ "$vid" = "$(latest "$n")" ] && current=true
        [ $first = 1 ] || printf ','; first=0
        blob_json "$n" "$base/versions/$p" "\"$vid\"" "$current"
      done
    fi
    printf ']\n' ;;
  download)
    allow --name --file --version-id --start-range --end-range --no-progress
    [ -n "$name" ] && [ -n "$file" ] || unexpected "download needs --name and --file"
    if [ -n "$version" ]; then src="$base/versions/$name/$version"; else src="$base/blobs/$name"; fi
    [ -f "$src" ] || not_found
    if [ -n "$start$end" ]; then
      [ "$start" = 0 ] && [ -n "$end" ] || unexpected "a range other than --start-range 0 --end-range E"
      head -c "$((end + 1))" "$src" > "$file"
    else
      cp "$src" "$file"
    fi
    printf '{"name":%s}\n' "$(json_text "$name")" ;;
  show)
    allow --name --output
    [ "$output" = json ] && [ -n "$name" ] || unexpected "show needs --name and --output json"
    [ -f "$base/blobs/$name" ] || not_found
    blob_json "$name" "$base/blobs/$name" "\"$(latest "$name")\"" true; echo ;;
  *) unexpected "az storage blob $verb" ;;
esac"#;

/// The fake gcloud's Cloud Storage (bash and coreutils only). `@ROOT@` is its folder:
/// `<bucket>/objects/<name>` is an object's live content, and
/// `<bucket>/generations/<name>/<generation>` every generation of it.
const GCLOUD: &str = r#"ROOT='@ROOT@'
unexpected() { printf 'unexpected: %s\n' "$*" >&2; exit 2; }
if [ -d "$ROOT/.faults" ]; then
  for fault in "$ROOT"/.faults/*; do
    [ -f "$fault/argv" ] || continue
    case "$* " in
      "$(cat "$fault/argv") "*)
        cat "$fault/stdout"; cat "$fault/stderr" >&2; code=$(cat "$fault/code")
        [ -f "$fault/once" ] && rm -rf "$fault"
        exit "$code" ;;
    esac
  done
fi
[ "$1" = storage ] || unexpected "gcloud $*"
split_url() { # gs://bucket/name[#generation] -> bucket, name, generation
  case "$1" in gs://*/*) ;; *) unexpected "URL $1" ;; esac
  local rest=${1#gs://}
  bucket=${rest%%/*}; name=${rest#*/}; generation=
  case "$name" in *'#'*) generation=${name##*#}; name=${name%#*} ;; esac
  case "$name" in *'*'*|*'?'*|*'['*) [ "$2" = wildcard ] || unexpected "a wildcard in $1" ;; esac
  base="$ROOT/$bucket"; mkdir -p "$base/objects" "$base/generations"
}
json_text() { local t=${1//\\/\\\\}; t=${t//\"/\\\"}; printf '"%s"' "$t"; }
stamp() { date -u -r "$1" +%Y-%m-%dT%H:%M:%S+0000; }
live() { ls "$base/generations/$1" 2>/dev/null | LC_ALL=C sort -n | tail -n 1; }
object_json() { # name, generation, content file, noncurrent
  printf '{"bucket":%s,"content_type":"application/octet-stream","crc32c_hash":"AAAAAA==","creation_time":"%s","generation":"%s","md5_hash":"1B2M2Y8AsgTpgAmY7PhCfg==","metageneration":1,"name":%s,"size":%s,"storage_class":"STANDARD","storage_url":%s,"update_time":"%s"' \
    "$(json_text "$bucket")" "$(stamp "$3")" "$2" "$(json_text "$1")" "$(wc -c < "$3" | tr -d ' ')" \
    "$(json_text "gs://$bucket/$1#$2")" "$(stamp "$3")"
  [ "$4" = yes ] && printf ',"noncurrent_time":"%s"' "$(stamp "$3")"
  printf '}'
}
no_match() { printf 'ERROR: (gcloud.storage.%s) The following URLs matched no objects or files:\n-%s\n' "$1" "$2" >&2; exit 1; }
source_of() { # the content file of name[#generation], or none
  if [ -n "$generation" ]; then src="$base/generations/$name/$generation"; else src="$base/objects/$name"; fi
  [ -f "$src" ]
}
case "$2" in
  buckets)
    [ $# -ge 4 ] || unexpected "gcloud $*"
    verb=$3
    case "$4" in gs://*/*|gs://) unexpected "a bucket URL $4" ;; gs://*) ;; *) unexpected "URL $4" ;; esac
    bucket=${4#gs://}; shift 4
    exists=yes
    [ -f "$ROOT/.explicit" ] && [ ! -f "$ROOT/$bucket/.bucket" ] && exists=no
    missing() { printf 'ERROR: (gcloud.storage.buckets.%s) gs://%s not found: 404.\n' "$verb" "$bucket" >&2; exit 1; }
    case "$verb" in
      describe)
        [ "$*" = --format=json ] || unexpected "gcloud storage buckets describe gs://$bucket $*"
        [ -f "$ROOT/$bucket/.versioning-hangs" ] && sleep 60
        if [ -f "$ROOT/$bucket/.versioning-denied" ]; then
          printf 'ERROR: (gcloud.storage.buckets.describe) HTTPError 403: ci@p.iam.gserviceaccount.com does not have storage.buckets.get access to the Google Cloud Storage bucket.\n' >&2; exit 1
        fi
        [ $exists = yes ] || missing
        if [ -f "$ROOT/$bucket/.bucket" ]; then
          p="$ROOT/$bucket/.props"
          printf '{"creation_time":"2026-01-01T00:00:00+0000","default_storage_class":"STANDARD","location":"%s","name":%s,"public_access_prevention":"%s","storage_url":"gs://%s/","uniform_bucket_level_access":%s' \
            "$(cat "$ROOT/$bucket/.bucket")" "$(json_text "$bucket")" "$(cat "$p/pap")" "$bucket" "$(cat "$p/ubla")"
          if [ -f "$ROOT/$bucket/.versioning-off" ]; then printf ',"versioning_enabled":false'
          elif [ -f "$p/versioning" ]; then printf ',"versioning_enabled":%s' "$(cat "$p/versioning")"; fi
          printf '}\n'
        else
          printf '{"creation_time":"2026-01-01T00:00:00+0000","default_storage_class":"STANDARD","location":"US","name":%s,"storage_url":"gs://%s/"' "$(json_text "$bucket")" "$bucket"
          [ -f "$ROOT/$bucket/.versioning-off" ] || printf ',"versioning_enabled":true'
          printf '}\n'
        fi ;;
      create)
        location=US; ubla=false; pap=inherited
        for a in "$@"; do
          case "$a" in
            --location=?*) location=${a#--location=} ;;
            --uniform-bucket-level-access) ubla=true ;;
            --public-access-prevention) pap=enforced ;;
            *) unexpected "argument '$a' to gcloud storage buckets create" ;;
          esac
        done
        if [ -f "$ROOT/$bucket/.bucket" ]; then
          printf 'ERROR: (gcloud.storage.buckets.create) HTTPError 409: Your previous request to create the named bucket succeeded and you already own it.\n' >&2; exit 1
        fi
        mkdir -p "$ROOT/$bucket/.props"; printf '%s' "$location" > "$ROOT/$bucket/.bucket"
        printf '%s' "$ubla" > "$ROOT/$bucket/.props/ubla"; printf '%s' "$pap" > "$ROOT/$bucket/.props/pap"
        printf 'Creating gs://%s/...\n' "$bucket" >&2 ;;
      update)
        [ $# -ge 1 ] || unexpected "gcloud storage buckets update gs://$bucket that sets nothing"
        [ $exists = yes ] || missing
        mkdir -p "$ROOT/$bucket/.props"; p="$ROOT/$bucket/.props"
        for a in "$@"; do
          case "$a" in
            --versioning) echo true > "$p/versioning"; rm -f "$ROOT/$bucket/.versioning-off" ;;
            --no-versioning) echo false > "$p/versioning" ;;
            --uniform-bucket-level-access) echo true > "$p/ubla" ;;
            --public-access-prevention) echo enforced > "$p/pap" ;;
            *) unexpected "argument '$a' to gcloud storage buckets update" ;;
          esac
        done
        printf 'Updating gs://%s/...\n  Completed 1\n' "$bucket" >&2 ;;
      *) unexpected "gcloud storage buckets $verb" ;;
    esac ;;
  cp)
    [ $# -ge 4 ] || unexpected "gcloud $*"
    from=$3; to=$4; shift 4; precondition=
    for a in "$@"; do case "$a" in --if-generation-match=0) precondition=0 ;; *) unexpected "argument '$a' to gcloud storage cp" ;; esac; done
    case "$from $to" in
      "gs://"*" gs://"*) unexpected "a copy between buckets" ;;
      "gs://"*)
        [ -z "$precondition" ] || unexpected "--if-generation-match on a download"
        split_url "$from"; source_of || no_match cp "$from"
        cp "$src" "$to" ;;
      *" gs://"*)
        [ -f "$from" ] || unexpected "upload of a missing file $from"
        split_url "$to"; [ -z "$generation" ] || unexpected "an upload to a generation"
        exec 9> "$ROOT/.lock"; flock 9
        if [ "$precondition" = 0 ] && [ -f "$base/objects/$name" ]; then
          printf 'ERROR: HTTPError 412: At least one of the pre-conditions you specified did not hold.\n' >&2; exit 1
        fi
        n=$(( $(cat "$ROOT/.counter" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$ROOT/.counter"
        gen=$((1700000000000000 + n))
        mkdir -p "$(dirname "$base/objects/$name")" "$base/generations/$name"
        cp "$from" "$base/generations/$name/$gen"
        cp "$from" "$base/objects/$name.tmp$$" && mv "$base/objects/$name.tmp$$" "$base/objects/$name"
        printf 'Copying file://%s to %s\n' "$from" "$to" >&2 ;;
      *) unexpected "a local copy" ;;
    esac ;;
  cat)
    shift 2; range=; url=
    for a in "$@"; do case "$a" in --range=*) range=${a#--range=} ;; gs://*) [ -z "$url" ] || unexpected "two URLs"; url=$a ;; *) unexpected "argument '$a' to gcloud storage cat" ;; esac; done
    split_url "$url"; source_of || no_match cat "$url"
    if [ -n "$range" ]; then
      from=${range%-*}; to=${range#*-}
      case "$from$to" in ''|*[!0-9]*) unexpected "--range=$range" ;; esac
      tail -c "+$((from + 1))" "$src" | head -c "$((to - from + 1))"
    else
      cat "$src"
    fi ;;
  objects)
    [ $# -eq 5 ] && [ "$5" = --format=json ] || unexpected "gcloud $*"
    case "$3" in
      describe)
        split_url "$4"; source_of || no_match objects.describe "$4"
        object_json "$name" "${generation:-$(live "$name")}" "$src" no; echo ;;
      list)
        split_url "$4" wildcard
        case "$name" in
          *'**') prefix=${name%'**'}
                  case "$prefix" in *'*'*|*'?'*|*'['*) unexpected "a wildcard other than a trailing ** in $4" ;; esac ;;
          *'*'*|*'?'*|*'['*) unexpected "a wildcard other than a trailing ** in $4" ;;
          *) prefix= ;;
        esac
        first=1; printf '['
        ( cd "$base/generations" && find . -type f | sed 's|^\./||' | LC_ALL=C sort ) | while IFS= read -r p; do
          n=${p%/*}; gen=${p##*/}
          if [ -n "$prefix" ]; then case "$n" in "$prefix"*) ;; *) continue ;; esac
          else [ "$n" = "$name" ] || continue; fi
          noncurrent=yes
          [ -f "$base/objects/$n" ] && [ "$gen" = "$(live "$n")" ] && noncurrent=no
          [ $first = 1 ] || printf ','; first=0
          object_json "$n" "$gen" "$base/generations/$p" "$noncurrent"
        done
        printf ']\n' ;;
      *) unexpected "gcloud $*" ;;
    esac ;;
  *) unexpected "gcloud $*" ;;
esac"#;

/// `fake_path()` (the project's `bin/`, then `/usr/bin:/bin`) with the CLIs `names`
/// hidden from `/usr/bin` and `/bin` (this machine may have a real `gcloud` there): the
/// system's folders are replaced by stand-ins of symlinks to everything else in them.
pub fn fake_path_without(project: &Project, names: &[&str]) -> String {
    let mut folders = vec![project.join("bin")];
    for (index, system) in ["/usr/bin", "/bin"].iter().enumerate() {
        let stand_in = project.join(&format!(".path-without-{index}"));
        std::fs::create_dir_all(&stand_in).unwrap();
        for entry in std::fs::read_dir(system).into_iter().flatten().flatten() {
            let name = entry.file_name();
            if !names.iter().any(|n| name == *n) {
                let _ = std::os::unix::fs::symlink(entry.path(), stand_in.join(&name));
            }
        }
        folders.push(stand_in);
    }
    let path = std::env::join_paths(&folders).unwrap();
    for name in names {
        assert!(
            which::which_in(name, Some(&path), project.path()).is_err(),
            "the test's PATH still finds `{name}`: {}",
            path.display()
        );
    }
    path.into_string().unwrap()
}
