//! toYaml must print exactly what go-yaml v2 prints after Helm's JSON
//! round trip: key order, quoting, folding, block layout.

use crate::harness::assert_same;

const VALUES: &str = r#"
scalars:
  int: 5
  big: 1000000
  float: 1.5
  bigfloat: 1234567.5
  tiny: 0.0000001
  bool: true
  nil: null
  str: plain text
  numstr: "123"
  boolstr: "true"
  yesstr: "yes"
  datestr: "2024-01-01"
  empty: ""
  colon: "a: b"
  hash: "a #b"
  star: "*star"
  dash: "- item"
  dashword: "-word"
  quote: "it's"
  dquote: 'say "hi"'
  lead: " leading"
  trail: "trailing "
  tab: "a\tb"
  unicode: "héllo wörld"
  emoji: "😀"
  url: "http://example.com:8080/path"
  colonend: "key:"
  percent: "%d"
  at: "@at"
  backtick: "`tick`"
  brace: "{a}"
  tilde: "~"
  dots: "..."
  base60: "1:20"
  octal: "0755"
  hex: "0x1F"
  float_like: "1e3"
  null_like: "null"
multiline:
  lit: "line one\nline two\n"
  nochomp: "no newline\nat end"
  keep: "two newlines\n\n"
  indented: "  indented first\nsecond\n"
  trailing_space_line: "a \nb\n"
long: "this is a very long string value that goes on and on past the eighty column limit of the emitter for sure"
longquoted: "this is a very long string value: with a colon so that it has to be quoted and it keeps going past eighty columns"
nested:
  list: [1, two, {k: v, a: [x, y]}, [n1, n2]]
  emptylist: []
  emptymap: {}
  deeper:
    deepest:
      key10: ten
      key9: nine
      key1: one
      Key: upper
      _under: u
      "1num": n
      a1b: x
      a01b: y
  items:
  - name: first
    value: 1
  - name: second
    sub:
      x: 1
"#;

const CASES: &[(&str, &str)] = &[
    ("scalars.yaml", "{{ toYaml .Values.scalars }}"),
    ("multiline.yaml", "{{ toYaml .Values.multiline }}"),
    (
        "long.yaml",
        "a:\n  {{- toYaml (dict \"long\" .Values.long \"longquoted\" .Values.longquoted) | nindent 2 }}\n{{ toYaml .Values.long }}",
    ),
    ("nested.yaml", "{{ toYaml .Values.nested }}"),
    ("list.yaml", "{{ toYaml .Values.nested.list }}"),
    ("whole.yaml", "{{ toYaml .Values }}"),
    (
        "scalar.yaml",
        "{{ toYaml 5 }}|{{ toYaml \"s\" }}|{{ toYaml .Values.scalars.nil }}|{{ toYaml .Values.nested.emptylist }}|{{ toYaml \"yes\" }}",
    ),
];

#[test]
fn to_yaml_matches_helm() {
    assert_same(VALUES, CASES);
}
