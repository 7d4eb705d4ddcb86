//! Reading the user's HCL with `hcl-rs`: backend config files, tfvars, and the
//! `backend` block and local module calls of a root module. Syntax errors name file,
//! line and column.

use std::path::Path;

use anyhow::Context;
use serde_json::{Map, Value};

use crate::error::TfenvError;

/// The attributes of a flat HCL file (a backend config or a tfvars file).
pub type Settings = Map<String, Value>;

/// Parses a backend config or tfvars file into its attributes.
pub fn read_settings(path: &Path, base: &Path) -> anyhow::Result<Settings> {
    let text = read(path)?;
    let body = parse(&text, path, base)?;
    Ok(body_attributes(&body))
}

/// What a root module's `terraform { backend "<type>" { ... } }` says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackendBlock {
    pub kind: String,
    /// Settings written inline in the block; the backend config file adds to them.
    pub settings: Settings,
}

/// Finds the backend block among the `.tf` files directly in `root`. `Ok(None)` when no
/// file declares one (terraform then uses the local backend with its defaults).
pub fn read_backend_block(root: &Path, base: &Path) -> anyhow::Result<Option<BackendBlock>> {
    let mut found: Option<(BackendBlock, std::path::PathBuf)> = None;
    for path in tf_files(root)? {
        let text = read(&path)?;
        // Cheap pre-filter: most files of a large module never mention a backend.
        if !text.contains("backend") && !text.contains("cloud") {
            continue;
        }
        let body = parse(&text, &path, base)?;
        for terraform in body.blocks().filter(|b| b.identifier() == "terraform") {
            for block in terraform.body().blocks() {
                let kind = match (block.identifier(), block.labels().first()) {
                    ("backend", Some(label)) => label.as_str().to_string(),
                    ("cloud", _) => "cloud".to_string(),
                    _ => continue,
                };
                if let Some((_, first)) = &found {
                    return Err(TfenvError::config(
                        format!(
                            "the root module declares more than one backend: in `{}` and `{}`",
                            super::display_path(first, base),
                            super::display_path(&path, base)
                        ),
                        Some("keep exactly one `backend` block per root module".to_string()),
                    )
                    .into());
                }
                let settings = body_attributes(block.body());
                found = Some((BackendBlock { kind, settings }, path.clone()));
            }
        }
    }
    Ok(found.map(|(block, _)| block))
}

/// The `required_version` of each `terraform` block among the `.tf` files directly in
/// `root`, with the file that sets it (terraform requires every one of them to hold).
/// A value that is not a string literal is skipped (terraform refuses it anyway).
pub fn read_required_versions(
    root: &Path,
    base: &Path,
) -> anyhow::Result<Vec<(std::path::PathBuf, String)>> {
    let mut found = Vec::new();
    for path in tf_files(root)? {
        let text = read(&path)?;
        if !text.contains("required_version") {
            continue;
        }
        let body = parse(&text, &path, base)?;
        for terraform in body.blocks().filter(|b| b.identifier() == "terraform") {
            for attr in terraform.body().attributes() {
                if attr.key() != "required_version" {
                    continue;
                }
                if let hcl::Expression::String(constraint) = attr.expr() {
                    found.push((path.clone(), constraint.clone()));
                }
            }
        }
    }
    Ok(found)
}

/// The `.tf` files directly in `dir`, sorted for stable results.
pub fn tf_files(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading `{}`", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading `{}`", dir.display()))?
            .path();
        if path.extension().is_some_and(|ext| ext == "tf") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The folders of the local modules (`source = "./…"` or `"../…"`) that the `.tf` and
/// `.tf.json` files directly in `dir` call. Files tfenv cannot read or parse are passed
/// over: terraform reports them itself.
pub fn local_module_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut sources: Vec<String> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.as_encoded_bytes();
        let Ok(text) = read(&path) else {
            continue;
        };
        if !text.contains("module") {
            continue;
        }
        if name.ends_with(b".tf") {
            let Ok(body) = hcl::parse(&text) else {
                continue;
            };
            for module in body.blocks().filter(|b| b.identifier() == "module") {
                for attr in module.body().attributes().filter(|a| a.key() == "source") {
                    if let hcl::Expression::String(source) = attr.expr() {
                        sources.push(source.clone());
                    }
                }
            }
        } else if name.ends_with(b".tf.json") {
            let Ok(json) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            // `"module": {"<name>": {...}}`, each call an object or a list of objects.
            let calls = json.get("module").and_then(Value::as_object);
            for call in calls.into_iter().flat_map(|m| m.values()) {
                let bodies = match call {
                    Value::Array(items) => items.iter().collect(),
                    other => vec![other],
                };
                sources.extend(
                    bodies
                        .into_iter()
                        .filter_map(|b| b.get("source")?.as_str().map(str::to_string)),
                );
            }
        }
    }
    sources
        .iter()
        .filter(|s| s.starts_with("./") || s.starts_with("../"))
        .map(|s| super::normalize(&dir.join(s)))
        .collect()
}

/// One variable a var file sets, and where: 1-based line and column of its name
/// (`None` in a `.tfvars.json` file, read as JSON).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub name: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The part of its value terraform refuses in a var file (a function call or a
    /// reference), as written; `None` when terraform can evaluate the value.
    pub refused: Option<String>,
}

/// The variables a var file sets, in file order, each with where it is set. A
/// `.json` file is read as JSON (terraform's `.tfvars.json`); anything else as HCL.
pub fn read_assignments(path: &Path, base: &Path) -> anyhow::Result<Vec<Assignment>> {
    use hcl::edit::Span;
    let text = read_shown(path, base)?;
    if path.extension().is_some_and(|ext| ext == "json") {
        let json: Map<String, Value> = parse_json(&text, path, base)?;
        return Ok(json
            .keys()
            .map(|name| Assignment {
                name: name.clone(),
                line: None,
                column: None,
                refused: None,
            })
            .collect());
    }
    let body = hcl::edit::parser::parse_body(&text)
        .map_err(|err| syntax_error(&hcl::Error::from(err), path, base))?;
    Ok(body
        .attributes()
        .map(|attr| {
            let (line, column) = attr
                .key
                .span()
                .or_else(|| attr.span())
                .map(|span| line_column(&text, span.start))
                .unzip();
            let refused = refused_in_var_file(&attr.value)
                .and_then(|expr| expr.span())
                .and_then(|span| text.get(span))
                .map(|written| written.trim().to_string());
            Assignment {
                name: attr.key.as_str().to_string(),
                line,
                column,
                refused,
            }
        })
        .collect())
}

/// The first part of a var file value that terraform refuses there: var files are
/// evaluated with no variables and no functions, so a reference (`local.x`, `var.y`,
/// `foo`) or a function call anywhere in the value is an error. Literals and operations
/// on them (`-1`, `1 + 2`, `"${1}"`) terraform evaluates, so they pass. The bodies of
/// `for` expressions and template directives, which have their own names, are not looked
/// into.
fn refused_in_var_file(expr: &hcl::edit::expr::Expression) -> Option<&hcl::edit::expr::Expression> {
    use hcl::edit::expr::{Expression, ObjectKey};
    use hcl::edit::template::{Element, Template};
    fn in_template(template: &Template) -> Option<&Expression> {
        template.iter().find_map(|element| match element {
            Element::Interpolation(interpolation) => refused_in_var_file(&interpolation.expr),
            _ => None,
        })
    }
    match expr {
        Expression::FuncCall(_) | Expression::Variable(_) => Some(expr),
        Expression::Traversal(traversal) => match &traversal.expr {
            // `local.x`: name the whole reference, not just `local`.
            Expression::Variable(_) => Some(expr),
            inner => refused_in_var_file(inner),
        },
        Expression::Array(array) => array.iter().find_map(refused_in_var_file),
        Expression::Object(object) => object.iter().find_map(|(key, value)| {
            let key = match key {
                ObjectKey::Expression(key) => refused_in_var_file(key),
                ObjectKey::Ident(_) => None,
            };
            key.or_else(|| refused_in_var_file(value.expr()))
        }),
        Expression::StringTemplate(template) => in_template(template),
        Expression::HeredocTemplate(heredoc) => in_template(&heredoc.template),
        Expression::Parenthesis(inner) => refused_in_var_file(inner.inner()),
        Expression::UnaryOp(op) => refused_in_var_file(&op.expr),
        Expression::BinaryOp(op) => {
            refused_in_var_file(&op.lhs_expr).or_else(|| refused_in_var_file(&op.rhs_expr))
        }
        Expression::Conditional(c) => refused_in_var_file(&c.cond_expr)
            .or_else(|| refused_in_var_file(&c.true_expr))
            .or_else(|| refused_in_var_file(&c.false_expr)),
        Expression::ForExpr(for_expr) => refused_in_var_file(&for_expr.intro.collection_expr),
        Expression::Null(_)
        | Expression::Bool(_)
        | Expression::Number(_)
        | Expression::String(_) => None,
    }
}

/// Where the syntax error of a var file is (1-based line and column), for reports that
/// keep it apart from the message; `None` when the file reads fine or cannot be read.
pub fn syntax_error_location(path: &Path) -> Option<(usize, usize)> {
    let text = read(path).ok()?;
    if path.extension().is_some_and(|ext| ext == "json") {
        let err = serde_json::from_str::<Map<String, Value>>(&text).err()?;
        return Some((err.line(), err.column()));
    }
    let err = hcl::edit::parser::parse_body(&text).err()?;
    Some((err.location().line(), err.location().column()))
}

/// 1-based line and column (in characters) of a byte offset into `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A `variable` block of a root module: its name, and whether it must be given a value
/// (it has no `default`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    pub required: bool,
}

/// The variables the `.tf` and `.tf.json` files directly in `root` declare, sorted by
/// name. A file that does not parse is an error naming it (terraform validate reports
/// what is wrong in it).
pub fn read_variables(root: &Path, base: &Path) -> anyhow::Result<Vec<Variable>> {
    let entries =
        std::fs::read_dir(root).with_context(|| format!("reading `{}`", root.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading `{}`", root.display()))?
            .path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !path.is_file() {
            continue;
        }
        if name.ends_with(".tf") {
            let text = read(&path)?;
            let body = parse(&text, &path, base)?;
            for block in body.blocks().filter(|b| b.identifier() == "variable") {
                if let Some(label) = block.labels().first() {
                    found.push(Variable {
                        name: label.as_str().to_string(),
                        required: !block.body().attributes().any(|a| a.key() == "default"),
                    });
                }
            }
        } else if name.ends_with(".tf.json") {
            let json: Value = parse_json(&read(&path)?, &path, base)?;
            // `"variable": {"<name>": {...}}`
            let declared = json.get("variable").and_then(Value::as_object);
            for (name, body) in declared.into_iter().flatten() {
                found.push(Variable {
                    name: name.clone(),
                    required: body.get("default").is_none(),
                });
            }
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// As `read`, naming the file as the user knows it (relative to `base`) when it cannot
/// be read.
fn read_shown(path: &Path, base: &Path) -> anyhow::Result<String> {
    let shown = super::display_path(path, base);
    if let Some(problem) = super::FileKind::of(path).problem() {
        anyhow::bail!("`{shown}` {problem}");
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read `{shown}`"))
}

fn read(path: &Path) -> anyhow::Result<String> {
    // Never open what is not a regular file: a FIFO would block.
    if let Some(problem) = super::FileKind::of(path).problem() {
        anyhow::bail!("`{}` {problem}", path.display());
    }
    std::fs::read_to_string(path).with_context(|| format!("reading `{}`", path.display()))
}

/// A JSON file terraform reads (`.tfvars.json`, `.tf.json`); a syntax error names the file,
/// line and column.
fn parse_json<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &Path,
    base: &Path,
) -> Result<T, TfenvError> {
    serde_json::from_str(text).map_err(|err| {
        let shown = super::display_path(path, base);
        TfenvError::config(
            format!(
                "syntax error in `{shown}` at line {}, column {}: {err}",
                err.line(),
                err.column()
            ),
            Some(format!("fix the JSON in `{shown}`")),
        )
    })
}

fn parse(text: &str, path: &Path, base: &Path) -> anyhow::Result<hcl::Body> {
    hcl::parse(text).map_err(|err| syntax_error(&err, path, base).into())
}

fn syntax_error(err: &hcl::Error, path: &Path, base: &Path) -> TfenvError {
    let shown = super::display_path(path, base);
    let message = match err {
        hcl::Error::Parse(parse) => format!(
            "syntax error in `{shown}` at line {}, column {}: {}",
            parse.location().line(),
            parse.location().column(),
            first_line(parse.message())
        ),
        other => format!("cannot read `{shown}`: {}", first_line(&other.to_string())),
    };
    let hint = if message.contains("redefined attribute") {
        // hcl-rs finds it; `terraform fmt` of the root never looks at this file.
        format!("set each attribute once in `{shown}`: terraform refuses one set twice")
    } else {
        format!("fix the HCL in `{shown}` (terraform fmt shows the same error)")
    };
    TfenvError::config(message, Some(hint))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text).trim()
}

fn body_attributes(body: &hcl::Body) -> Settings {
    body.attributes()
        .map(|attr| {
            let value = hcl::Value::from(attr.expr().clone());
            let json = serde_json::to_value(value).unwrap_or(Value::Null);
            (attr.key().to_string(), json)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn backend_config_attributes_are_read_including_nested_objects() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "dev.backend.conf",
            "bucket = \"b\"\nkey = \"dev/terraform.tfstate\"\nendpoints = { s3 = \"http://127.0.0.1:5000\" }\nuse_lockfile = true\n",
        );
        let settings = read_settings(&path, dir.path()).unwrap();
        assert_eq!(settings["bucket"], "b");
        assert_eq!(settings["endpoints"]["s3"], "http://127.0.0.1:5000");
        assert_eq!(settings["use_lockfile"], true);
    }

    #[test]
    fn syntax_error_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "dev.backend.conf",
            "bucket = \"b\"\nkey = = 3\n",
        );
        let err = read_settings(&path, dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`dev.backend.conf` at line 2, column"),
            "{text}"
        );
    }

    #[test]
    fn backend_block_type_and_inline_settings_are_found() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "vars.tf", "variable \"x\" {}\n");
        write(
            dir.path(),
            "main.tf",
            "terraform {\n  required_version = \">= 1.0\"\n  backend \"s3\" {\n    region = \"eu-west-1\"\n  }\n}\n",
        );
        let block = read_backend_block(dir.path(), dir.path()).unwrap().unwrap();
        assert_eq!(block.kind, "s3");
        assert_eq!(block.settings["region"], "eu-west-1");
    }

    #[test]
    fn required_versions_of_terraform_blocks_are_read_with_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let versions = write(
            dir.path(),
            "versions.tf",
            "terraform {\n  required_version = \">= 1.0, < 2.0\"\n}\n",
        );
        write(dir.path(), "main.tf", "resource \"x\" \"y\" {}\n");
        let found = read_required_versions(dir.path(), dir.path()).unwrap();
        assert_eq!(found, vec![(versions, ">= 1.0, < 2.0".to_string())]);
    }

    #[test]
    fn no_backend_block_is_none() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "main.tf", "output \"x\" { value = 1 }\n");
        assert_eq!(read_backend_block(dir.path(), dir.path()).unwrap(), None);
    }

    #[test]
    fn local_module_folders_are_found_in_tf_and_tf_json_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        write(
            &root,
            "main.tf",
            "module \"net\" {\n  source = \"../modules/net\"\n}\nmodule \"reg\" {\n  source = \"hashicorp/consul/aws\"\n}\n",
        );
        write(
            &root,
            "extra.tf.json",
            r#"{"module": {"app": {"source": "./app"}, "two": [{"source": "./two"}]}}"#,
        );
        write(&root, "broken.tf", "module \"x\" {");
        let mut found = local_module_dirs(&root);
        found.sort();
        assert_eq!(
            found,
            [
                dir.path().join("modules/net"),
                root.join("app"),
                root.join("two"),
            ]
        );
    }

    #[test]
    fn var_file_assignments_are_read_with_their_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "dev.tfvars",
            "# comment\nregion = \"eu\"\n\n  instance_cout = 3\ntags = {\n  a = 1\n}\n",
        );
        let found = read_assignments(&path, dir.path()).unwrap();
        let at: Vec<(&str, Option<usize>, Option<usize>)> = found
            .iter()
            .map(|a| (a.name.as_str(), a.line, a.column))
            .collect();
        assert_eq!(
            at,
            [
                ("region", Some(2), Some(1)),
                ("instance_cout", Some(4), Some(3)),
                ("tags", Some(5), Some(1)),
            ]
        );
    }

    #[test]
    fn function_calls_and_references_in_a_var_file_are_named_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "dev.tfvars",
            concat!(
                "a = max(1, 2)\n",
                "b = local.x\n",
                "c = [1, { k = var.y }]\n",
                "d = \"x-${upper(\"a\")}\"\n",
                "e = -1\n",
                "f = 1 + 2\n",
                "g = { \"k\" = [true, null, \"s\", 1.5] }\n",
                "h = \"${1}\"\n",
                "i = <<EOT\nplain\nEOT\n",
            ),
        );
        let found = read_assignments(&path, dir.path()).unwrap();
        let refused: Vec<(&str, Option<&str>)> = found
            .iter()
            .map(|a| (a.name.as_str(), a.refused.as_deref()))
            .collect();
        assert_eq!(
            refused,
            [
                ("a", Some("max(1, 2)")),
                ("b", Some("local.x")),
                ("c", Some("var.y")),
                ("d", Some("upper(\"a\")")),
                ("e", None),
                ("f", None),
                ("g", None),
                ("h", None),
                ("i", None),
            ]
        );
    }

    #[test]
    fn a_variable_set_twice_in_a_var_file_is_an_error_whose_hint_does_not_send_to_fmt() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "dev.tfvars", "a = 1\na = 2\n");
        let err = read_assignments(&path, dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("`dev.tfvars` at line 2, column 1: invalid attribute"),
            "{err:#}"
        );
        let hint = crate::error::hint_for(&err).unwrap();
        assert!(!hint.contains("terraform fmt"), "{hint}");
        assert!(
            hint.contains("set each attribute once in `dev.tfvars`"),
            "{hint}"
        );
    }

    #[test]
    fn a_var_file_syntax_error_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "dev.tfvars", "a = 1\nb = = 2\n");
        let err = read_assignments(&path, dir.path()).unwrap_err().to_string();
        assert!(err.contains("`dev.tfvars` at line 2, column"), "{err}");
        assert_eq!(syntax_error_location(&path).map(|at| at.0), Some(2));
        let fine = write(dir.path(), "ok.tfvars", "a = 1\n");
        assert_eq!(syntax_error_location(&fine), None);
    }

    #[test]
    fn tfvars_json_files_are_read_as_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "dev.tfvars.json", r#"{"a": 1, "b": {"c": 2}}"#);
        let names: Vec<String> = read_assignments(&path, dir.path())
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn declared_variables_say_whether_they_are_required() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "vars.tf",
            "variable \"region\" {\n  type = string\n}\nvariable \"count_\" {\n  default = 1\n}\nvariable \"opt\" {\n  default = null\n}\n",
        );
        write(
            dir.path(),
            "more.tf.json",
            r#"{"variable": {"j": {}, "k": {"default": 2}}}"#,
        );
        write(dir.path(), "terraform.tfvars", "region = \"x\"\n");
        let found: Vec<(String, bool)> = read_variables(dir.path(), dir.path())
            .unwrap()
            .into_iter()
            .map(|v| (v.name, v.required))
            .collect();
        assert_eq!(
            found,
            [
                ("count_".to_string(), false),
                ("j".to_string(), true),
                ("k".to_string(), false),
                ("opt".to_string(), false),
                ("region".to_string(), true),
            ]
        );
    }

    #[test]
    fn two_backend_blocks_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.tf",
            "terraform {\n backend \"local\" {}\n}\n",
        );
        write(dir.path(), "b.tf", "terraform {\n backend \"s3\" {}\n}\n");
        let err = read_backend_block(dir.path(), dir.path()).unwrap_err();
        assert!(err.to_string().contains("more than one backend"), "{err}");
    }
}
