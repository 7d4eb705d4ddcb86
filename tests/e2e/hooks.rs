//! `[hooks]` on the real terraform, local backend: `on_deploy` receives the very document
//! `deploy --output json` printed, for an applied run and for one with no changes, with
//! `TFENV_EVENT` and `TFENV_ENVIRONMENT` set, in the project root. The faults (failing,
//! hanging, missing hooks) are in tests/cli/hooks.rs.

use serde_json::Value;

use crate::support::{self, Project, stderr, stdout};

#[test]
fn on_deploy_receives_the_deploy_document_after_an_apply_and_after_no_changes() {
    let project = Project::demo();
    let toml = project.read("tfenv.toml");
    project.write(
        "tfenv.toml",
        &format!("{toml}\n[hooks]\non_deploy = [\"./hooks/record.sh\", \"from-tfenv\"]\n"),
    );
    project.script(
        "hooks/record.sh",
        r#"n=$(ls received 2>/dev/null | wc -l)
mkdir -p "received/$n"
cat > "received/$n/stdin.json"
echo "$TFENV_EVENT $TFENV_ENVIRONMENT $1" > "received/$n/env"
pwd > "received/$n/cwd"
echo "posted to slack""#,
    );
    let tf = support::terraform();
    for (run, result) in [(0, "applied"), (1, "no-changes")] {
        let output = project
            .tfenv_with(&tf)
            .args(["deploy", "dev", "--yes", "--output", "json"])
            .output()
            .unwrap();
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(0), "{err}");
        assert!(err.contains("[dev] on_deploy: posted to slack"), "{err}");
        let printed: Value = serde_json::from_str(&stdout(&output)).unwrap();
        let text = project.read(&format!("received/{run}/stdin.json"));
        let received: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(received, printed);
        assert_eq!(received["result"], result);
        assert_eq!(received["environment"], "dev");
        assert!(!text.contains("demo-token-not-a-real-secret"), "{text}");
        assert_eq!(
            project.read(&format!("received/{run}/env")),
            "deploy dev from-tfenv\n"
        );
        assert_eq!(
            std::path::Path::new(project.read(&format!("received/{run}/cwd")).trim()),
            project.path().canonicalize().unwrap()
        );
    }
}
