use std::path::Path;

use super::*;

fn touch(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn names(project: &Project) -> Vec<&str> {
    project
        .environments
        .iter()
        .map(|e| e.name.as_str())
        .collect()
}

#[test]
fn environments_files_layout_is_discovered() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(root, "main.tf", "");
    touch(
        root,
        "environments/dev.backend.conf",
        "path = \"dev.tfstate\"\n",
    );
    touch(root, "environments/dev.tfvars", "x = 1\n");
    touch(
        root,
        "environments/production.backend.conf",
        "path = \"p.tfstate\"\n",
    );
    touch(root, "environments/common.tfvars", "y = 2\n");
    let project = Project::load(root, None).unwrap();
    assert_eq!(names(&project), ["dev", "production"]);
    let dev = project.environment("dev").unwrap();
    assert_eq!(dev.layout, Layout::EnvironmentsFiles);
    assert_eq!(dev.root, root);
    assert_eq!(dev.var_files, [root.join("environments/dev.tfvars")]);
    assert_eq!(dev.tier, Tier::Development);
    let prod = project.environment("production").unwrap();
    assert_eq!(prod.tier, Tier::Production);
    assert!(prod.var_files.is_empty());
    assert_eq!(prod.artifacts_dir, root.join("state/production"));
}

#[test]
fn suffix_layout_is_discovered_from_either_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(root, "backend-staging.tfbackend", "key = \"s\"\n");
    touch(root, "terraform.tfvars.staging", "a = 1\n");
    touch(root, "terraform.tfvars.prod", "a = 2\n");
    touch(root, "terraform.tfvars.example", "a = 3\n");
    let project = Project::load(root, None).unwrap();
    assert_eq!(names(&project), ["prod", "staging"]);
    let staging = project.environment("staging").unwrap();
    assert_eq!(staging.layout, Layout::SuffixFiles);
    assert_eq!(
        staging.backend_config,
        Some(root.join("backend-staging.tfbackend"))
    );
    assert_eq!(staging.tier, Tier::Staging);
    assert_eq!(project.environment("prod").unwrap().backend_config, None);
}

#[test]
fn folder_per_env_layout_uses_the_folder_as_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(
        root,
        "environments/dev/main.tf",
        "terraform {\n backend \"local\" {}\n}\n",
    );
    touch(root, "environments/dev/dev.tfvars", "");
    touch(root, "environments/dev/backend.conf", "path = \"x\"\n");
    touch(root, "environments/notes/README.md", "not an environment");
    let project = Project::load(&root.join("environments/dev"), None).unwrap();
    assert_eq!(project.root, root);
    assert_eq!(names(&project), ["dev"]);
    let dev = &project.environments[0];
    assert_eq!(dev.layout, Layout::FolderPerEnv);
    assert_eq!(dev.root, root.join("environments/dev"));
    assert_eq!(
        dev.backend_config,
        Some(root.join("environments/dev/backend.conf"))
    );
    assert_eq!(dev.var_files, [root.join("environments/dev/dev.tfvars")]);
}

#[test]
fn the_same_environment_in_two_layouts_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(root, "environments/dev.backend.conf", "");
    touch(root, "backend-dev.tfbackend", "");
    let err = Project::load(root, None).unwrap_err().to_string();
    assert!(err.contains("environment `dev` is defined twice"), "{err}");
    assert!(err.contains("environments/dev.backend.conf"), "{err}");
    assert!(err.contains("backend-dev.tfbackend"), "{err}");
}

#[test]
fn a_discovered_file_with_an_invalid_name_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    touch(dir.path(), "environments/Prod.backend.conf", "");
    let err = Project::load(dir.path(), None).unwrap_err().to_string();
    assert!(err.contains("environments/Prod.backend.conf"), "{err}");
    assert!(err.contains("not a valid environment name"), "{err}");
}

#[test]
fn tfenv_toml_overrides_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(root, "infra/main.tf", "");
    touch(root, "environments/dev.backend.conf", "");
    touch(root, "environments/dev.tfvars", "");
    touch(root, "environments/common.tfvars", "");
    touch(root, "environments/production.backend.conf", "");
    touch(root, "environments/production.tfvars", "");
    touch(
        root,
        "tfenv.toml",
        r#"
[project]
root = "infra"
required_version = ">= 1.0"

[environments.dev]
tier = "staging"
backup = true

[environments.production]
aliases = ["prod"]
var_files = ["environments/common.tfvars", "environments/production.tfvars"]
backup_keep = 50

[environments.qa]
workspace = "qa"
backend_config = "environments/dev.backend.conf"
"#,
    );
    let project = Project::load(&root.join("infra"), None).unwrap();
    assert_eq!(project.config_file, Some(root.join("tfenv.toml")));
    assert_eq!(names(&project), ["dev", "production", "qa"]);
    assert_eq!(project.required_version.as_deref(), Some(">= 1.0"));

    let dev = project.environment("dev").unwrap();
    assert_eq!(dev.tier, Tier::Staging, "the config wins over the name");
    assert_eq!(dev.root, root.join("infra"));
    assert_eq!(
        dev.backend_config,
        Some(root.join("environments/dev.backend.conf"))
    );
    assert_eq!(dev.var_files, [root.join("environments/dev.tfvars")]);
    assert!(dev.backup);

    let prod = project.environment("prod").unwrap();
    assert_eq!(prod.name, "production");
    assert_eq!(prod.tier, Tier::Production);
    assert_eq!(prod.var_files.len(), 2);
    assert_eq!(prod.backup_keep, Some(50));

    let qa = project.environment("qa").unwrap();
    assert_eq!(qa.workspace.as_deref(), Some("qa"));
    assert_eq!(qa.layout, Layout::Config);
}

#[test]
fn a_missing_var_file_in_tfenv_toml_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    touch(
        dir.path(),
        "tfenv.toml",
        "[environments.dev]\nvar_files = [\"environments/nope.tfvars\"]\n",
    );
    // The project loads (other environments stay usable); using `dev` is the error.
    let project = Project::load(dir.path(), None).unwrap();
    let err = project.environment("dev").unwrap_err().to_string();
    assert!(err.contains("environment `dev`"), "{err}");
    assert!(err.contains("environments/nope.tfvars"), "{err}");
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn an_alias_that_collides_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    touch(
        dir.path(),
        "tfenv.toml",
        "[environments.dev]\n[environments.prod]\naliases = [\"dev\"]\n",
    );
    let err = Project::load(dir.path(), None).unwrap_err().to_string();
    assert!(err.contains("alias `dev`"), "{err}");
}

#[test]
fn unknown_environment_suggests_the_closest_and_lists_known_without_a_stray_semicolon() {
    let dir = tempfile::tempdir().unwrap();
    touch(
        dir.path(),
        "tfenv.toml",
        "[environments.dev]\n[environments.prod]\n[environments.staging]\n",
    );
    let project = Project::load(dir.path(), None).unwrap();
    let err = project.environment("prodd").unwrap_err().to_string();
    assert_eq!(
        err,
        "environment `prodd` is not defined; did you mean `prod`? (known: dev, prod, staging)"
    );
    let err = project.environment("zzzzzz").unwrap_err().to_string();
    assert_eq!(
        err,
        "environment `zzzzzz` is not defined (known: dev, prod, staging)"
    );
}

#[test]
fn invalid_names_are_refused_before_lookup() {
    let dir = tempfile::tempdir().unwrap();
    touch(dir.path(), "tfenv.toml", "[environments.dev]\n");
    let project = Project::load(dir.path(), None).unwrap();
    for name in ["../x", "Prod", ""] {
        let err = project.environment(name).unwrap_err();
        assert_eq!(err.exit(), crate::exit::Exit::Usage);
        assert!(err.to_string().contains("not a valid environment name"));
    }
}

#[test]
fn no_project_anywhere_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Project::load(dir.path(), None).unwrap_err().to_string();
    assert!(err.contains("no tfenv project found"), "{err}");
}

#[test]
fn select_keeps_order_and_removes_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    touch(
        dir.path(),
        "tfenv.toml",
        "[environments.dev]\n[environments.prod]\naliases=[\"p\"]\n",
    );
    let project = Project::load(dir.path(), None).unwrap();
    let chosen = project
        .select(&["p".into(), "dev".into(), "prod".into()])
        .unwrap();
    let chosen: Vec<_> = chosen.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(chosen, ["prod", "dev"]);
}

#[test]
fn editor_and_backup_leftovers_are_not_environments() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(root, "environments/dev.backend.conf", "");
    touch(root, "environments/.#dev.backend.conf", "");
    touch(root, "environments/dev.backend.conf~", "");
    touch(root, "terraform.tfvars.prod", "");
    touch(root, "terraform.tfvars.prod.bak", "");
    touch(root, "terraform.tfvars.json", "{}");
    touch(root, "terraform.tfvars.example", "");
    let project = Project::load(root, None).unwrap();
    assert_eq!(names(&project), ["dev", "prod"]);
}

#[test]
fn with_declared_environments_an_odd_file_name_is_skipped_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(root, "tfenv.toml", "[environments.dev]\n");
    touch(root, "environments/dev.backend.conf", "");
    touch(root, "environments/Old-Prod.backend.conf", "");
    let project = Project::load(root, None).unwrap();
    assert_eq!(names(&project), ["dev"]);
    assert!(project.environment("dev").unwrap().backend_config.is_some());
}

fn fifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::S_IRWXU).unwrap();
}

/// A project whose discovered layout would make `production` a development environment
/// if its tfenv.toml were skipped.
fn project_with_renamed_production(root: &Path) {
    touch(root, "environments/main.backend.conf", "path = \"m\"\n");
    touch(
        root,
        "real.toml",
        "[environments.main]\ntier = \"production\"\n",
    );
}

/// The error a command on `env` fails with, for a file problem kept on the environment.
fn env_config_error(root: &Path, env: &str) -> (String, Option<String>) {
    let project = Project::load(root, None).unwrap();
    let tfenv = project.environment(env).unwrap_err();
    assert_eq!(tfenv.exit(), crate::exit::Exit::Failure, "{tfenv}");
    (tfenv.to_string(), tfenv.hint().map(str::to_string))
}

fn config_error(root: &Path, config: Option<&Path>) -> (String, Option<String>) {
    let err = Project::load(root, config).unwrap_err();
    let tfenv = err
        .downcast_ref::<TfenvError>()
        .expect("a configuration error");
    assert_eq!(tfenv.exit(), crate::exit::Exit::Failure, "{tfenv}");
    (tfenv.to_string(), tfenv.hint().map(str::to_string))
}

#[test]
fn a_tfenv_toml_that_is_not_a_regular_file_is_an_error_naming_it_never_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    project_with_renamed_production(root);
    let config = root.join("tfenv.toml");
    let cases: [(&str, &dyn Fn()); 4] = [
        (
            "is a dangling symlink (its target `nowhere.toml` does not exist)",
            &|| std::os::unix::fs::symlink("nowhere.toml", &config).unwrap(),
        ),
        ("is a directory, not a regular file", &|| {
            std::fs::create_dir(&config).unwrap()
        }),
        ("is a FIFO (named pipe), not a regular file", &|| {
            fifo(&config)
        }),
        ("is a symlink loop", &|| {
            std::os::unix::fs::symlink("tfenv.toml", &config).unwrap()
        }),
    ];
    for (what, make) in cases {
        make();
        let (message, hint) = config_error(root, None);
        assert_eq!(message, format!("`{}` {what}", config.display()));
        assert!(!hint.unwrap().contains("--config"));
        // From a folder below, too: the walk stops at it.
        touch(root, "sub/notes.txt", "");
        let (message, _) = config_error(&root.join("sub"), None);
        assert!(message.contains(what), "{message}");
        if config.is_dir() && !config.is_symlink() {
            std::fs::remove_dir(&config).unwrap();
        } else {
            std::fs::remove_file(&config).unwrap();
        }
    }
}

#[test]
fn a_symlink_to_a_readable_tfenv_toml_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    project_with_renamed_production(root);
    std::os::unix::fs::symlink("real.toml", root.join("tfenv.toml")).unwrap();
    let project = Project::load(root, None).unwrap();
    assert_eq!(project.environment("main").unwrap().tier, Tier::Production);
    assert_eq!(project.config_file, Some(root.join("tfenv.toml")));
}

#[test]
fn config_flag_naming_anything_but_a_regular_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    project_with_renamed_production(root);
    std::fs::create_dir(root.join("dir.toml")).unwrap();
    fifo(&root.join("fifo.toml"));
    std::os::unix::fs::symlink("gone.toml", root.join("dangling.toml")).unwrap();
    for (name, what) in [
        ("dir.toml", "is a directory"),
        ("fifo.toml", "is a FIFO"),
        ("dangling.toml", "is a dangling symlink"),
        ("missing.toml", "does not exist"),
    ] {
        let (message, hint) = config_error(root, Some(Path::new(name)));
        assert!(
            message.contains(&format!("`{}` {what}", root.join(name).display())),
            "{message}"
        );
        assert!(hint.unwrap().contains("--config"), "{name}");
    }
    std::os::unix::fs::symlink("real.toml", root.join("link.toml")).unwrap();
    let project = Project::load(root, Some(Path::new("link.toml"))).unwrap();
    assert_eq!(project.environment("main").unwrap().tier, Tier::Production);
}

#[test]
fn a_tfenv_toml_that_is_not_utf8_mentions_config_only_when_it_was_passed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("tfenv.toml"), b"\xff\xfe\x00garbage").unwrap();
    let (message, hint) = config_error(root, None);
    assert!(message.contains("is not UTF-8 text"), "{message}");
    let hint = hint.unwrap();
    assert!(!hint.contains("--config"), "{hint}");
    assert!(hint.contains("docs/configuration.md"), "{hint}");

    let (message, hint) = config_error(root, Some(Path::new("tfenv.toml")));
    assert!(message.contains("is not UTF-8 text"), "{message}");
    assert!(hint.unwrap().contains("--config"));
}

#[test]
fn the_nearest_project_wins_over_a_tfenv_toml_further_up() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(
        root,
        "tfenv.toml",
        "[environments.prod]\naliases = [\"p\"]\n",
    );
    touch(root, "team/backend-prod.tfbackend", "key = \"k\"\n");
    touch(root, "team/modules/x/main.tf", "");
    let project = Project::load(&root.join("team/modules/x"), None).unwrap();
    assert_eq!(project.root, root.join("team"));
    assert_eq!(project.config_file, None);
    assert!(project.environment("p").is_err());
    assert_eq!(
        project.describe(),
        format!(
            "`{}` (discovered layout, no tfenv.toml)",
            root.join("team").display()
        )
    );

    // A tfenv.toml nearer than a layout wins just the same.
    touch(root, "team/tfenv.toml", "[environments.qa]\n");
    let project = Project::load(&root.join("team/modules/x"), None).unwrap();
    assert_eq!(names(&project), ["qa"]);
    assert_eq!(
        project.describe(),
        format!("`{}` (config `tfenv.toml`)", root.join("team").display())
    );
}

#[test]
fn a_backend_config_or_var_file_that_is_not_a_regular_file_says_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Named in tfenv.toml: the project loads, using `dev` is the error.
    touch(
        root,
        "tfenv.toml",
        "[environments.dev]\nbackend_config = \"dev.conf\"\n",
    );
    std::fs::create_dir(root.join("dev.conf")).unwrap();
    let (message, _) = env_config_error(root, "dev");
    assert_eq!(
        message,
        "environment `dev`: `dev.conf` (named in `tfenv.toml`) is a directory, not a regular file"
    );
    std::fs::remove_dir(root.join("dev.conf")).unwrap();
    fifo(&root.join("dev.conf"));
    let (message, _) = env_config_error(root, "dev");
    assert!(
        message.ends_with("is a FIFO (named pipe), not a regular file"),
        "{message}"
    );
    std::fs::remove_file(root.join("dev.conf")).unwrap();
    std::os::unix::fs::symlink("dev.conf", root.join("dev.conf")).unwrap();
    let (message, _) = env_config_error(root, "dev");
    assert!(message.ends_with("is a symlink loop"), "{message}");
}

#[test]
fn discovered_files_that_are_not_regular_files_are_that_environments_problem_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(root, "environments/dev.backend.conf", "path = \"d\"\n");
    fifo(&root.join("environments/prod.backend.conf"));
    let (message, _) = env_config_error(root, "prod");
    assert_eq!(
        message,
        "environment `prod`: `environments/prod.backend.conf` is a FIFO (named pipe), not a regular file"
    );
    // The other environment is unaffected.
    let project = Project::load(root, None).unwrap();
    assert!(project.environment("dev").is_ok());
    std::fs::remove_file(root.join("environments/prod.backend.conf")).unwrap();

    // A dangling var file of one discovered environment.
    std::os::unix::fs::symlink("gone.tfvars", root.join("environments/dev.tfvars")).unwrap();
    touch(root, "environments/staging.backend.conf", "path = \"s\"\n");
    let (message, _) = env_config_error(root, "dev");
    assert!(
        message.starts_with("environment `dev`: `environments/dev.tfvars` is a dangling symlink"),
        "{message}"
    );
    let project = Project::load(root, None).unwrap();
    assert!(project.environment("staging").is_ok());
    std::fs::remove_file(root.join("environments/dev.tfvars")).unwrap();

    touch(root, "environments/prod/main.tf", "");
    std::os::unix::fs::symlink("nowhere", root.join("environments/prod/backend.conf")).unwrap();
    let (message, _) = env_config_error(root, "prod");
    assert!(
        message.starts_with(
            "environment `prod`: `environments/prod/backend.conf` is a dangling symlink"
        ),
        "{message}"
    );
}

#[test]
fn a_config_or_start_folder_with_dot_dot_gives_the_root_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    project_with_renamed_production(root);
    touch(root, "sub/notes.txt", "");
    let project = Project::load(&root.join("sub"), Some(Path::new("../real.toml"))).unwrap();
    assert_eq!(project.root, root);
    assert_eq!(project.config_file, Some(root.join("real.toml")));
    assert_eq!(
        project.describe(),
        format!("`{}` (config `real.toml`)", root.display())
    );
    let env = project.environment("main").unwrap();
    assert_eq!(
        project.show(env.backend_config.as_ref().unwrap()),
        "environments/main.backend.conf"
    );

    // `-C sub/..`: the walk upward starts at the folder itself, not at `sub`.
    std::fs::rename(root.join("real.toml"), root.join("tfenv.toml")).unwrap();
    let project = Project::load(&root.join("sub/.."), None).unwrap();
    assert_eq!(project.root, root);
}

#[test]
fn promote_from_names_the_environment_an_alias_stands_for() {
    let dir = tempfile::tempdir().unwrap();
    touch(
        dir.path(),
        "tfenv.toml",
        "[environments.staging]\naliases = [\"stg\"]\n[environments.production]\npromote_from = \"stg\"\n",
    );
    let project = Project::load(dir.path(), None).unwrap();
    let production = project.environment("production").unwrap();
    assert_eq!(production.promote_from.as_deref(), Some("staging"));
    assert_eq!(project.environment("staging").unwrap().promote_from, None);
}

#[test]
fn a_promote_from_that_is_unknown_itself_or_a_circle_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    for (text, expected, hint) in [
        (
            "[environments.dev]\n[environments.staging]\n[environments.production]\npromote_from = \"stagng\"\n",
            "`tfenv.toml`: [environments.production] promote_from = `stagng` is not an environment (known: dev, staging, production)",
            "remove promote_from",
        ),
        (
            "[environments.production]\naliases = [\"prod\"]\npromote_from = \"prod\"\n",
            "`tfenv.toml`: [environments.production] promote_from names `production` itself",
            "e.g. `staging`",
        ),
        (
            "[environments.dev]\npromote_from = \"production\"\n[environments.staging]\npromote_from = \"dev\"\n[environments.production]\npromote_from = \"staging\"\n",
            "`tfenv.toml`: promote_from goes round in a circle: dev → production → staging → dev",
            "remove promote_from from one of them",
        ),
    ] {
        touch(dir.path(), "tfenv.toml", text);
        let err = Project::load(dir.path(), None).unwrap_err();
        let tfenv = err.downcast_ref::<TfenvError>().unwrap();
        assert_eq!(tfenv.to_string(), expected, "{text}");
        assert!(tfenv.hint().unwrap().contains(hint), "{text}: {tfenv:?}");
        assert_eq!(tfenv.exit(), crate::exit::Exit::Failure);
    }
}

#[test]
fn backup_max_age_defaults_to_a_week_for_production_and_the_environment_overrides_the_project() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let load = |toml: &str| {
        touch(root, "tfenv.toml", toml);
        Project::load(root, None)
    };
    let ages = |project: &Project| -> Vec<Option<u64>> {
        project
            .environments
            .iter()
            .map(|e| e.backup_max_age.map(|d| d.as_secs()))
            .collect()
    };
    let day = 86400;
    let project = load("[environments.dev]\n[environments.production]\n").unwrap();
    assert_eq!(ages(&project), [None, Some(7 * day)]);

    let project = load(
        "[project]\nbackup_max_age = \"2d\"\n[environments.dev]\n[environments.production]\nbackup_max_age = \"off\"\n[environments.staging]\nbackup_max_age = false\n",
    )
    .unwrap();
    assert_eq!(ages(&project), [Some(2 * day), None, None]);

    let project = load("[environments.dev]\nbackup_max_age = \" 36h \"\n").unwrap();
    assert_eq!(
        project.environments[0].backup_max_age,
        Some(Duration::from_secs(36 * 3600))
    );

    for (value, says) in [
        ("\"weekly\"", "`weekly` is not a duration"),
        ("true", "`true` is not a duration"),
        ("\"0s\"", "`0s` is zero"),
    ] {
        let err = load(&format!(
            "[environments.production]\nbackup_max_age = {value}\n"
        ))
        .unwrap_err();
        let err = err.downcast_ref::<TfenvError>().unwrap();
        let text = err.to_string();
        assert!(
            text.contains("[environments.production] backup_max_age") && text.contains(says),
            "{text}"
        );
        assert!(err.hint().unwrap().contains("\"off\""), "{:?}", err.hint());
    }
    let err = load("[project]\nbackup_max_age = 7\n").unwrap_err();
    assert!(format!("{err:#}").contains("backup_max_age"), "{err:#}");

    // Discovered environments (no tfenv.toml): production's week all the same.
    std::fs::remove_file(root.join("tfenv.toml")).unwrap();
    touch(root, "main.tf", "");
    touch(root, "environments/prod.backend.conf", "");
    touch(root, "environments/prod.tfvars", "");
    let project = Project::load(root, None).unwrap();
    assert_eq!(
        project.environment("prod").unwrap().backup_max_age,
        Some(Duration::from_secs(7 * day))
    );
}

#[test]
fn a_relative_program_is_the_project_roots_and_a_bare_name_is_on_path() {
    let dir = tempfile::tempdir().unwrap();
    touch(dir.path(), "tfenv.toml", "[environments.dev]\n");
    let project = Project::load(dir.path(), None).unwrap();
    let root = &project.root;
    assert_eq!(
        project.program("./policy/check.sh"),
        root.join("./policy/check.sh")
    );
    assert_eq!(project.program("conftest"), Path::new("conftest"));
    assert_eq!(project.program("/usr/bin/opa"), Path::new("/usr/bin/opa"));
}

#[test]
fn hooks_are_resolved_with_a_30s_default_timeout() {
    let dir = tempfile::tempdir().unwrap();
    touch(
        dir.path(),
        "tfenv.toml",
        "[environments.dev]\n\n[hooks]\non_failure = [\"./page.sh\", \"ops\"]\n",
    );
    let project = Project::load(dir.path(), None).unwrap();
    assert_eq!(
        project.hooks,
        Hooks {
            on_failure: Some(vec!["./page.sh".into(), "ops".into()]),
            ..Hooks::default()
        }
    );
    assert_eq!(project.hooks.timeout, std::time::Duration::from_secs(30));
    touch(
        dir.path(),
        "tfenv.toml",
        "[environments.dev]\n\n[hooks]\non_drift = [\"x\"]\ntimeout = \"1m\"\n",
    );
    let project = Project::load(dir.path(), None).unwrap();
    assert_eq!(project.hooks.timeout, std::time::Duration::from_secs(60));
}

#[test]
fn a_hook_naming_no_program_or_a_bad_timeout_is_an_error_with_an_example() {
    let dir = tempfile::tempdir().unwrap();
    for (hooks, says, example) in [
        (
            "on_deploy = []",
            "[hooks] on_deploy names no program",
            "on_deploy = [\"./hooks/notify.sh\"",
        ),
        (
            "on_failure = [\"\"]",
            "[hooks] on_failure names no program",
            "on_failure = [\"",
        ),
        (
            "timeout = \"soon\"",
            "[hooks] timeout `soon` is not a duration",
            "timeout = \"30s\"",
        ),
        (
            "timeout = \"0s\"",
            "[hooks] timeout `0s` is zero",
            "timeout = \"30s\"",
        ),
    ] {
        touch(
            dir.path(),
            "tfenv.toml",
            &format!("[environments.dev]\n\n[hooks]\n{hooks}\n"),
        );
        let err = Project::load(dir.path(), None).unwrap_err();
        let err = err.downcast_ref::<TfenvError>().unwrap();
        assert!(err.to_string().contains(says), "{hooks}: {err}");
        assert!(err.hint().unwrap().contains(example), "{hooks}: {err:?}");
    }
}

#[test]
fn near_misses_that_compete_for_one_key_give_a_valid_tfenv_toml_and_are_all_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(root, "prod.backend.conf", "path = \"a\"\n");
    touch(root, "prod.backend.hcl", "path = \"b\"\n");
    touch(root, "Odd.backend.conf", "");
    let err = Project::load(root, None).unwrap_err();
    let err = err.downcast_ref::<TfenvError>().unwrap();
    let message = err.to_string();
    for file in ["prod.backend.conf", "prod.backend.hcl", "Odd.backend.conf"] {
        assert!(
            message.contains(&format!("`{file}` looks like")),
            "{message}"
        );
    }
    let (_, suggested) = err.hint().unwrap().split_once("\n\n").unwrap();
    assert_eq!(
        suggested,
        "[environments.prod]\ntier = \"production\"\nbackend_config = \"prod.backend.conf\""
    );
    touch(root, "tfenv.toml", suggested);
    let project = Project::load(root, None).unwrap();
    assert_eq!(names(&project), ["prod"]);
}

#[test]
fn auto_loaded_var_files_come_in_terraforms_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for name in [
        "b.auto.tfvars",
        "a.auto.tfvars.json",
        "terraform.tfvars.json",
        "terraform.tfvars",
        "x.tfvars",
    ] {
        touch(root, name, "");
    }
    let files: Vec<_> = auto_var_files(root)
        .iter()
        .map(|p| p.strip_prefix(root).unwrap().display().to_string())
        .collect();
    assert_eq!(
        files,
        [
            "terraform.tfvars",
            "terraform.tfvars.json",
            "a.auto.tfvars.json",
            "b.auto.tfvars"
        ]
    );
}
