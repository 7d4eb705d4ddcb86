//! A backend config changed under an initialized environment: where its data dir says
//! the state was (the backend terraform recorded at the last init, in
//! `<data dir>/terraform.tfstate`), whether a state is there, and what stops a plain
//! init from leaving that state behind (`tfenv migrate` moves it).

use std::ffi::OsString;
use std::path::Path;

use anyhow::Context as _;
use serde_json::Value;

use super::{StateHeader, Terraform, check_interrupted, flag_path};
use crate::backend::{Backend, BackendKind};
use crate::error::TfenvError;
use crate::files;
use crate::project::{Environment, Project};

/// The backend terraform recorded in the environment's data dir at its last init: type
/// and settings (credentials included when the config had them: never print them).
/// `Ok(None)` when the data dir records none (never initialized here).
pub fn recorded_backend(env: &Environment) -> anyhow::Result<Option<Backend>> {
    let file = env.data_dir().join("terraform.tfstate");
    let Some(bytes) = files::read_regular(&file)? else {
        return Ok(None);
    };
    // Empty or cut short: what a killed init leaves (init removes an empty one and
    // terraform rewrites it); it records no place.
    let Ok(doc) = serde_json::from_slice::<Value>(&bytes) else {
        tracing::debug!("`{}` is not JSON: no recorded backend", file.display());
        return Ok(None);
    };
    let Some(backend) = doc.get("backend").filter(|b| b.is_object()) else {
        return Ok(None);
    };
    let Some(kind) = backend.get("type").and_then(Value::as_str) else {
        return Ok(None);
    };
    let settings = backend
        .get("config")
        .and_then(Value::as_object)
        .map(|config| {
            config
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(Backend {
        kind: BackendKind::parse(kind),
        implicit: false,
        settings,
        workspace: env.workspace.clone(),
    }))
}

/// Whether two backends keep the environment's state in one place.
pub fn same_place(a: &Backend, b: &Backend, env: &Environment) -> bool {
    a.kind == b.kind
        && match (a.identity(env), b.identity(env)) {
            (Some(x), Some(y)) => x == y,
            _ => a.settings == b.settings,
        }
}

/// Whether tfenv reads a state of this backend itself (without terraform): local and s3.
pub fn reads_state(backend: &Backend) -> bool {
    matches!(backend.kind, BackendKind::Local | BackendKind::S3)
}

/// The state where `backend` keeps the environment's, read without terraform (see
/// `reads_state`): `Ok(None)` when there is none. Held in memory: a migration reads it
/// once for its backup.
pub async fn read_state_at(
    backend: &Backend,
    env: &Environment,
) -> anyhow::Result<Option<Vec<u8>>> {
    if let Some(file) = backend.local_state_file(env) {
        return match std::fs::read(&file) {
            Ok(bytes) if bytes.is_empty() => Ok(None),
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("reading `{}`", file.display())),
        };
    }
    if backend.reads_remote_state() {
        return backend
            .read_remote_state(Box::new(|mut reader| {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut reader, &mut bytes)?;
                Ok(Some(bytes))
            }))
            .await
            .map(|bytes| bytes.filter(|b| !b.is_empty()));
    }
    anyhow::bail!(
        "tfenv does not read the state of a {} backend itself",
        backend.kind
    )
}

/// The header of a state read by `read_state_at`; `None` for an empty one.
pub fn header_of(bytes: &[u8]) -> anyhow::Result<Option<StateHeader>> {
    Ok(super::state::read_header_slice(bytes)?.filter(|h| !h.is_empty()))
}

/// The environment's backend config points somewhere else than its data dir was
/// initialized with, and the old place holds a state (or may: a backend tfenv does not
/// read).
pub struct Moved {
    pub from: Backend,
    pub from_location: String,
    pub to_location: String,
    pub to_kind: BackendKind,
    /// The state at the old place; `None`: a backend tfenv cannot read, it may hold one.
    pub state: Option<StateHeader>,
}

impl Moved {
    /// What the old place holds, for messages: `serial 3, 1 resource(s)`.
    pub fn holds(&self) -> String {
        match &self.state {
            Some(h) => format!("a state, serial {}, {} resource(s)", h.serial, h.resources),
            None => format!(
                "possibly a state (tfenv cannot read a {} state itself)",
                self.from.kind
            ),
        }
    }

    /// Why a plain init stops: naming `tfenv migrate` and `init --reconfigure`.
    pub fn error(&self, env: &Environment) -> anyhow::Error {
        let name = &env.name;
        TfenvError::Refused {
            message: format!(
                "the backend of `{name}` changed: it was initialized with `{}` ({}), which holds {}, and its backend config now points at `{}` ({}); a plain init would leave that state behind",
                self.from_location,
                self.from.kind,
                self.holds(),
                self.to_location,
                self.to_kind,
            ),
            hint: Some(format!(
                "move the state with `tfenv migrate {name}` (tfenv knows the old backend from the last init; elsewhere: `tfenv migrate {name} --from <old backend config>`), or abandon it and start at the new location with `tfenv init {name} --reconfigure`"
            )),
        }
        .into()
    }
}

/// What the init guard found when the backend config differs from the recorded one.
pub enum Guard {
    /// Nothing recorded, or the config is the recorded one: a plain init.
    Clear,
    /// The old place holds a state (or may): stop, naming migrate.
    Moved(Box<Moved>),
    /// Nothing to lose at the old place (readable and empty, or the same place written
    /// differently): terraform needs `-reconfigure`; the reason, for one line.
    Reconfigure(String),
}

/// The init guard: see `Guard`.
pub async fn guard(
    env: &Environment,
    backend: &Backend,
    project: &Project,
) -> anyhow::Result<Guard> {
    let Some(from) = recorded_backend(env)? else {
        return Ok(Guard::Clear);
    };
    if from.kind == backend.kind && from.settings == backend.settings {
        return Ok(Guard::Clear);
    }
    let from_location = from.location(env, project);
    if same_place(&from, backend, env) {
        return Ok(Guard::Reconfigure(format!(
            "the backend config of `{}` names the same place `{from_location}` differently",
            env.name
        )));
    }
    let from_kind = from.kind.clone();
    let found = state_left_at(from, env, backend, project).await.map_err(|err| {
        let name = &env.name;
        anyhow::Error::from(TfenvError::Refused {
            message: format!(
                "the backend of `{name}` changed: it was initialized with `{from_location}` ({}), and tfenv cannot tell whether a state is still there ({err:#}); its backend config now points at `{}` ({})",
                from_kind,
                backend.location(env, project),
                backend.kind
            ),
            hint: Some(format!(
                "move the state with `tfenv migrate {name}`, or, if nothing there is worth keeping, start at the new location with `tfenv init {name} --reconfigure`"
            )),
        })
    })?;
    match found {
        Some(moved) => Ok(Guard::Moved(Box::new(moved))),
        None => Ok(Guard::Reconfigure(format!(
            "the backend of `{}` moved from `{from_location}`, which holds no state",
            env.name
        ))),
    }
}

/// The backend config of `env` moved away from a place that holds a state: `Some` says
/// where from (see `Moved`). `None`: never initialized, same place, or nothing there.
pub async fn moved_with_state(
    env: &Environment,
    backend: &Backend,
    project: &Project,
) -> anyhow::Result<Option<Moved>> {
    let Some(from) = recorded_backend(env)? else {
        return Ok(None);
    };
    if same_place(&from, backend, env) {
        return Ok(None);
    }
    state_left_at(from, env, backend, project).await
}

/// What `moved_with_state` says once it knows the recorded backend `from` is another
/// place than `backend`'s: `Some` when a state is (or may be) still there.
async fn state_left_at(
    from: Backend,
    env: &Environment,
    backend: &Backend,
    project: &Project,
) -> anyhow::Result<Option<Moved>> {
    let state = if reads_state(&from) {
        let what = || {
            format!(
                "reading the state `{}` of `{}`",
                from.location(env, project),
                env.name
            )
        };
        let bytes = read_state_at(&from, env).await.with_context(what)?;
        match bytes
            .as_deref()
            .map(header_of)
            .transpose()
            .with_context(what)?
            .flatten()
        {
            Some(header) => Some(header),
            None => return Ok(None),
        }
    } else {
        None
    };
    Ok(Some(Moved {
        from_location: from.location(env, project),
        to_location: backend.location(env, project),
        to_kind: backend.kind.clone(),
        from,
        state,
    }))
}

impl Terraform {
    /// Initializes the environment's data dir with the backend `from` (config file
    /// `from_file`), so that a following `init -migrate-state` moves the state from
    /// there: `init -reconfigure` of a module holding only `backend "<type>" {}`, run in
    /// a temporary folder (the root module may declare another backend type by now).
    /// A local backend's relative paths stay relative to the root module.
    pub async fn init_old_backend(
        &self,
        env: &Environment,
        from: &Backend,
        from_file: &Path,
    ) -> anyhow::Result<()> {
        files::ensure_private_dir(&env.artifacts_dir)?;
        let dir = tempfile::Builder::new()
            .prefix(".migrate-from-")
            .tempdir_in(&env.artifacts_dir)
            .context("creating a temporary folder for the old backend")?;
        std::fs::write(
            dir.path().join("backend.tf"),
            format!("terraform {{\n  backend \"{}\" {{}}\n}}\n", from.kind),
        )
        .context("writing the old backend's module")?;
        let mut args: Vec<OsString> = vec![
            "init".into(),
            "-input=false".into(),
            "-no-color".into(),
            "-reconfigure".into(),
            flag_path("-backend-config=", &std::path::absolute(from_file)?),
        ];
        if from.kind == BackendKind::Local {
            for key in ["path", "workspace_dir"] {
                if let Some(value) = from.setting(key).filter(|v| !Path::new(v).is_absolute()) {
                    let mut arg = OsString::from(format!("-backend-config={key}="));
                    arg.push(env.root.join(value));
                    args.push(arg);
                }
            }
        }
        let mut inv = self.invocation(env, &args);
        inv.cwd = dir.path().to_path_buf();
        inv.env.retain(|(k, _)| k != "TF_WORKSPACE");
        inv.env_remove.push("TF_WORKSPACE".into());
        let done = self.runner.run(&inv, self.options(env)).await?;
        check_interrupted(&done)?;
        if !done.success() {
            return Err(self.failed("init (old backend)", env, &done, None));
        }
        files::ensure_private_dir(&env.data_dir())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_backend_is_read_from_the_data_dir_without_its_null_settings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tfenv.toml"), "[environments.dev]\n").unwrap();
        std::fs::write(dir.path().join("main.tf"), "").unwrap();
        let project = Project::load(dir.path(), None).unwrap();
        let env = project.environment("dev").unwrap();
        assert!(
            recorded_backend(env).unwrap().is_none(),
            "never initialized"
        );
        std::fs::create_dir_all(env.data_dir()).unwrap();
        std::fs::write(
            env.data_dir().join("terraform.tfstate"),
            r#"{"version":3,"backend":{"type":"local","config":{"path":"old.tfstate","workspace_dir":null},"hash":1}}"#,
        )
        .unwrap();
        let recorded = recorded_backend(env).unwrap().unwrap();
        assert_eq!(recorded.kind, BackendKind::Local);
        assert_eq!(recorded.setting("path").as_deref(), Some("old.tfstate"));
        assert!(!recorded.settings.contains_key("workspace_dir"));

        // The same file named relatively or absolutely is one place; another is not.
        let mut absolute = recorded.clone();
        absolute.settings.insert(
            "path".into(),
            env.root.join("old.tfstate").display().to_string().into(),
        );
        assert!(same_place(&recorded, &absolute, env));
        let mut other = recorded.clone();
        other.settings.insert("path".into(), "new.tfstate".into());
        assert!(!same_place(&recorded, &other, env));
        let s3 = crate::backend::tests::backend(
            "s3",
            serde_json::json!({"bucket": "b", "key": "k"}),
            None,
        );
        assert!(!same_place(&recorded, &s3, env));
    }
}
