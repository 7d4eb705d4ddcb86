//! The man pages: `tfenv man`, `tfenv man <command>`, `tfenv man --dir DIR`, each page
//! rendered by the real man/groff with warnings on.

use std::path::Path;

use crate::support::snap::Snapshots;
use crate::support::{Project, stderr, stdout};

/// `program` from PATH, or a failure naming the package that has it.
fn needed(program: &str, package: &str) -> std::path::PathBuf {
    which::which(program).unwrap_or_else(|_| {
        panic!("`{program}` is needed to check the man pages: apt-get install {package}")
    })
}

/// `page` rendered by `man -l` and by `groff -ww`, each with every warning on: the
/// rendered text, or a failure quoting the warnings.
fn render(page: &Path) -> String {
    let man = needed("man", "man-db");
    let groff = needed("groff", "groff");
    let output = std::process::Command::new(man)
        .args(["--warnings", "-l"])
        .arg(page)
        .env("MANWIDTH", "80")
        .env_remove("MANPAGER")
        .env("PAGER", "cat")
        .output()
        .unwrap();
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "man -l {}: {}",
        page.display(),
        stderr(&output)
    );
    // Without a terminal man overstrikes bold ("N\x08N"): plain text to search.
    let mut rendered = String::new();
    for c in stdout(&output).chars() {
        if c == '\u{8}' {
            rendered.pop();
        } else {
            rendered.push(c);
        }
    }
    let output = std::process::Command::new(groff)
        .args(["-ww", "-man", "-Tutf8", "-z"])
        .arg(page)
        .output()
        .unwrap();
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "groff -ww {}: {}",
        page.display(),
        stderr(&output)
    );
    rendered
}

/// The `name(1)` pages a page's roff names.
fn references(roff: &str) -> Vec<String> {
    let text = roff
        .replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fR", "");
    text.match_indices("(1)")
        .map(|(at, _)| {
            let start = text[..at]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .map_or(0, |i| i + 1);
            text[start..at].to_string()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

#[test]
fn man_dir_writes_a_page_per_command_each_rendering_without_warnings() {
    let project = Project::empty();
    let dir = project.join("man/man1");
    project
        .tfenv()
        .args(["man", "--dir"])
        .arg(&dir)
        .assert()
        .success();
    let help = stdout(&project.tfenv().arg("--help").output().unwrap());
    // Every command --help lists (clap's `help` aside) has its page.
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A command's line; a description wrapped onto the next line is indented more.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 15, "{help}");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut expected: Vec<String> = commands.iter().map(|c| format!("tfenv-{c}.1")).collect();
    expected.push("tfenv.1".to_string());
    expected.sort();
    assert_eq!(files, expected);
    for file in &files {
        let path = dir.join(file);
        let roff = std::fs::read_to_string(&path).unwrap();
        let rendered = render(&path);
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS"] {
            assert!(
                rendered.contains(section),
                "{file} has no {section}:\n{rendered}"
            );
        }
        // Each page it points to is one of these.
        for name in references(&roff) {
            assert!(
                files.contains(&format!("{name}.1")),
                "{file} names {name}(1), which is not written"
            );
        }
    }
    let deploy = render(&dir.join("tfenv-deploy.1"));
    for words in [
        "Confirmation by tier",
        "tfenv deploy production --yes --confirm production",
        "state/<env>/backups/",
        "EXAMPLES",
        "FILES",
        "tfenv-plan(1)",
    ] {
        assert!(
            deploy.contains(words),
            "tfenv-deploy(1) lacks {words}:\n{deploy}"
        );
    }
}

#[test]
fn man_of_a_command_prints_its_page_and_an_unknown_one_names_the_closest() {
    let project = Project::empty();
    let output = project.tfenv().args(["man", "restore"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let page = stdout(&output);
    assert!(
        page.starts_with(".ie") || page.contains(".TH tfenv-restore 1"),
        "{page}"
    );
    assert!(page.contains(".TH tfenv-restore 1"), "{page}");
    assert!(page.contains("terraform state push"), "{page}");

    let output = project.tfenv().args(["man", "restor"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stdout(&output), "");
    assert!(
        stderr(&output).contains("error: `tfenv man`: no command `restor`")
            && stderr(&output).contains("did you mean `restore`?"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn man_dir_that_cannot_be_written_says_so_and_writes_nothing() {
    let project = Project::empty();
    project.write("taken", "a file, not a folder\n");
    let output = project
        .tfenv()
        .args(["man", "--dir", "taken/man1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("error: cannot write the man pages into `taken/man1`")
            && text.contains("pass --dir a folder you can write to"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn man_pages_match_their_snapshots() {
    let project = Project::empty();
    let snapshots = Snapshots::unfiltered();
    for (name, args) in [
        ("man-tfenv.1", &["man"][..]),
        ("man-tfenv-restore.1", &["man", "restore"]),
    ] {
        let output = project.tfenv().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        snapshots.stdout(name, args, &output);
    }
}

/// README's install line, as a user runs it after `cargo install` (tfenv in
/// ~/.cargo/bin, on PATH, no MANPATH): man-db finds the pages by itself.
#[test]
fn man_finds_the_pages_of_the_readme_install_line_without_manpath() {
    let man = needed("man", "man-db");
    let project = Project::empty();
    let home = project.join("home");
    let bin = home.join(".cargo/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("tfenv"), bin.join("tfenv")).unwrap();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("tfenv man --dir "))
        .expect("README has a `tfenv man --dir` install line");
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display());
    let output = std::process::Command::new("sh")
        .args([
            "-c",
            &line.replace("man tfenv-deploy", "man -w tfenv-deploy"),
        ])
        .current_dir(project.path())
        .env("HOME", &home)
        .env("PATH", &path)
        .env_remove("MANPATH")
        .output()
        .unwrap();
    assert!(output.status.success(), "{line}: {}", stderr(&output));
    let found = stdout(&output);
    assert!(
        found.trim_end().ends_with("/man1/tfenv-deploy.1")
            && found.contains(&*home.to_string_lossy()),
        "{found}"
    );
    // And the page reads.
    let output = std::process::Command::new(man)
        .arg("tfenv-deploy")
        .env("HOME", &home)
        .env("PATH", &path)
        .env_remove("MANPATH")
        .env("PAGER", "cat")
        .env_remove("MANPAGER")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("EXIT STATUS"));
}

#[test]
fn tfenv_1_has_a_description_environment_and_see_also_listing_every_command_page() {
    let project = Project::empty();
    let dir = project.join("man1");
    project
        .tfenv()
        .args(["man", "--dir"])
        .arg(&dir)
        .assert()
        .success();
    let page = render(&dir.join("tfenv.1"));
    // A section's text: the lines after its heading, up to the next heading (a line that
    // starts in column 0), words joined by one space.
    let section = |name: &str| -> String {
        let lines: Vec<&str> = page
            .lines()
            .skip_while(|l| *l != name)
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with(' '))
            .collect();
        assert!(!lines.is_empty(), "tfenv(1) has no {name}:\n{page}");
        lines
            .join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    // DESCRIPTION says more than NAME's line.
    assert!(
        !section("DESCRIPTION").starts_with("safe multi-environment"),
        "{page}"
    );
    assert!(section("DESCRIPTION").contains("tfenv runs terraform for each environment"));
    let environment = section("ENVIRONMENT");
    for var in [
        "TFENV_LOG",
        "NO_COLOR",
        "CI",
        "TFENV_COMPLETE",
        "TF_PLUGIN_CACHE_DIR",
        "TFENV_BUNDLE_RECIPIENTS",
        "TFENV_BUNDLE_PASSPHRASE",
        "TFENV_BUNDLE_IDENTITY",
    ] {
        assert!(environment.contains(var), "{var}: {environment}");
    }
    let see_also = section("SEE ALSO");
    for file in std::fs::read_dir(&dir).unwrap() {
        let name = file.unwrap().file_name().into_string().unwrap();
        if let Some(command) = name.strip_suffix(".1").filter(|n| *n != "tfenv") {
            assert!(
                see_also.contains(&format!("{command}(1)")),
                "{command}: {see_also}"
            );
        }
    }
    // tfenv(1) never sends the reader to itself.
    assert!(!page.contains("see tfenv(1)"), "{page}");

    let envs = render(&dir.join("tfenv-envs.1"));
    for words in [
        "envs/<env>/",
        "(auto)",
        "never change the exit",
        "no tfenv project found",
        "tfenv.toml",
    ] {
        assert!(envs.contains(words), "tfenv-envs(1) lacks {words}:\n{envs}");
    }
}

#[test]
fn synopsis_names_option_values_and_only_tfenv_itself_has_a_version() {
    let project = Project::empty();
    let page = stdout(&project.tfenv().args(["man", "restore"]).output().unwrap());
    let synopsis = page
        .lines()
        .skip_while(|l| *l != ".SH SYNOPSIS")
        .nth(1)
        .unwrap();
    for words in [
        r"\fB\-C|\-\-chdir\fR \fIDIR\fR",
        r"\fB\-\-confirm\fR \fIENV\fR",
    ] {
        assert!(synopsis.contains(words), "{words}: {synopsis}");
    }
    assert!(!synopsis.contains("version"), "{synopsis}");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        page.contains(&format!(r#".TH tfenv-restore 1  "tfenv {version}""#)),
        "{page}"
    );
    project.tfenv().args(["deploy", "-V"]).assert().code(2);
    let printed = project.tfenv().arg("-V").output().unwrap();
    assert_eq!(stdout(&printed), format!("tfenv {version}\n"));
    // A page and --dir at once: the usage shows both forms, neither as required.
    let both = project
        .tfenv()
        .args(["man", "deploy", "--dir", "x"])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
    assert!(
        stderr(&both).contains("tfenv man [COMMAND]")
            && stderr(&both).contains("tfenv man --dir <DIR>"),
        "{}",
        stderr(&both)
    );
}
