//! toToml must print what BurntSushi/toml prints inside Helm; fromToml
//! must read what it reads.

use crate::harness::assert_same;

const VALUES: &str = r#"
name: web
port: 8080
ratio: 0.5
big: 1e21
million: 1000000
small: 0.00001
on: true
tags: [a, b]
nums: [1, 2.5]
empty: {}
emptylist: []
nothing: null
quoted: "tab\there \"q\" back\\slash"
server:
  host: "x\"y"
  nested:
    deep: 1
    deeper: {leaf: true}
  list:
    - name: one
      v: 1
      sub: {k: v}
    - name: two
mixed: [1, "a", {inline: 1, t: {x: 2}}]
"key with space": 1
"dotted.key": 2
"#;

#[test]
fn toml_matches_helm() {
    assert_same(
        VALUES,
        &[
            ("values.toml", "{{ toToml .Values }}"),
            (
                "others.toml",
                r#"{{ toToml (dict "a" 1 "b" (dict "c" "d")) }}|{{ toToml (list 1 2) }}|{{ toToml (dict) }}|{{ toToml (list 1 .Values.nothing) }}|{{ toToml .Values.server }}"#,
            ),
            (
                "from.yaml",
                r#"{{ $t := fromToml "a = 1\nb = \"x\"\nc = true\n[s]\nc = [1, 2]\nd = 1.5\n[[arr]]\nn = 1\n[[arr]]\nn = 2\n" }}{{ $t }} {{ add $t.a 1 }} {{ typeOf $t.s.d }} {{ $t.arr }} {{ toToml $t }}|{{ fromToml "a = " | keys }}"#,
            ),
        ],
    );
}
