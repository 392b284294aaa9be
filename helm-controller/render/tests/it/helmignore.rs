//! .helmignore as Helm's loader applies it, and subcharts' test hooks,
//! against Helm: the parent's rules filter a vendored subchart's files,
//! the subchart's own .helmignore is only a file, negation ignores what it
//! does not match, directories are ignored whole.

use std::path::Path;

use crate::harness::ours_dir;

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

const LIST_FILES: &str = "files: {{ range $path, $_ := .Files }}{{ $path }} {{ end }}\nignore: {{ .Files.Get \".helmignore\" | quote }}\n";

fn chart(root: &Path, helmignore: &str) {
    write(
        &root.join("Chart.yaml"),
        "apiVersion: v2\nname: top\nversion: 0.1.0\n",
    );
    write(&root.join("values.yaml"), "a: 1\n");
    write(&root.join(".helmignore"), helmignore);
    write(&root.join("templates/files.yaml"), LIST_FILES);
    write(&root.join("templates/.hidden.yaml"), "hidden: true\n");
    write(&root.join("files/a.txt"), "a");
    write(&root.join("files/b.bak"), "b");
    write(&root.join("files/deep/c.txt"), "c");
    write(&root.join("docs/readme.md"), "r");
    write(&root.join("keep.txt"), "k");
    write(&root.join("top.txt"), "t");
    let sub = root.join("charts/sub");
    write(
        &sub.join("Chart.yaml"),
        "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
    );
    write(&sub.join(".helmignore"), "*.txt\n");
    write(&sub.join("templates/files.yaml"), LIST_FILES);
    write(
        &sub.join("templates/tests/test-connection.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: sub-test\n  annotations:\n    helm.sh/hook: test\n",
    );
    write(&sub.join("notes.txt"), "n");
    write(&sub.join("old.bak"), "o");
    write(&sub.join("docs/x.md"), "x");
}

#[test]
fn helmignore_and_subchart_tests_match_helm() {
    let mut differ = Vec::new();
    for (i, helmignore) in [
        "",
        "*.bak\ndocs/\n",
        "# comment\n/top.txt\nfiles/deep\ncharts/sub/docs/\n",
        "files/*.txt\n*.md\n",
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join(format!("top{i}"));
        chart(&root, helmignore);
        let theirs = k3r_helm_oracle::helm_render(&root, "demo", "ns");
        let ours = ours_dir(&root);
        if theirs != ours {
            differ.push(format!(
                "{helmignore:?}:\n  helm: {theirs:?}\n  ours: {ours:?}"
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    // A negation ignores everything it does not match, Chart.yaml included:
    // Helm then fails to load the chart ("Chart.yaml file is missing").
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("negated");
    chart(&root, "*.bak\n!keep.txt\n");
    let ours = ours_dir(&root).expect_err("nothing but keep.txt is loaded");
    assert!(ours.contains("Chart.yaml"), "{ours}");
}
