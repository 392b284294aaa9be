//! Every case is rendered by real Helm and by this crate; the outputs must
//! be byte-identical, and where Helm fails we must fail naming the same
//! file, line and problem.

use serde_json::json;

use crate::oracle::{CHART, helm_render, ours, write_chart};

fn values() -> serde_json::Value {
    json!({
        "n": 3,
        "big": 1000000,
        "small": 0.00001,
        "half": 0.5,
        "hundredk": 100000,
        "s": "hello",
        "empty": "",
        "zero": 0,
        "yes": true,
        "no": false,
        "nothing": null,
        "list": [1, "two", {"name": "three"}, [4]],
        "map": {"b": 2, "a": 1, "c": {"d": "deep"}},
        "emptyList": [],
        "emptyMap": {},
        "html": "<a href='x'>\"&\"</a>",
    })
}

/// Engine semantics, one template file each.
const CASES: &[(&str, &str)] = &[
    (
        "trim.yaml",
        "a  {{- 1 -}}  b\n{{- /* comment */ -}}\n  c {{/* kept */}} d\n{{-\n  .Values.s\n-}}\n end",
    ),
    (
        "print.yaml",
        "{{ .Values.n }} {{ .Values.big }} {{ .Values.small }} {{ .Values.half }} {{ .Values.hundredk }} {{ .Values.yes }} [{{ .Values.nothing }}] {{ .Values.list }} {{ .Values.map }} {{ .Values.emptyList }} {{ .Values.emptyMap }} [{{ .Values.missing }}]",
    ),
    (
        "literals.yaml",
        "{{ 'a' }} {{ 0x1F }} {{ 1e3 }} {{ 1_000 }} {{ -5 }} {{ .5 }} {{ 1.0 }} {{ 017 }} {{ 0b101 }} {{ 0o17 }} {{ \"a\\tb\\u00e9\\x41\" }} {{ `raw\\n` }} {{ true }} {{ print nil }}",
    ),
    (
        "vars.yaml",
        "{{ $x := 1 }}{{ $x = 2 }}{{ $x }} {{ $y := .Values.s }}{{ $y }} {{ $.Values.n }}{{ with .Values.map }}{{ $.Release.Name }}{{ end }}{{ $z := .Values.missing }}[{{ $z.foo }}]",
    ),
    (
        "if.yaml",
        "{{ if .Values.yes }}y{{ end }}{{ if .Values.no }}n{{ else }}e{{ end }}{{ if .Values.zero }}z{{ else if .Values.empty }}x{{ else if .Values.list }}l{{ end }}{{ if .Values.missing }}m{{ end }}{{ if .Values.emptyMap }}em{{ else }}EM{{ end }}{{ if $v := .Values.s }}{{ $v }}{{ end }}",
    ),
    (
        "range.yaml",
        "{{ range .Values.list }}[{{ . }}]{{ end }}{{ range $i, $v := .Values.list }}{{ $i }}={{ $v }};{{ end }}{{ range $k, $v := .Values.map }}{{ $k }}:{{ $v }},{{ end }}{{ range $v := .Values.map }}<{{ $v }}>{{ end }}{{ range .Values.emptyList }}x{{ else }}empty{{ end }}{{ range .Values.missing }}x{{ else }}none{{ end }}{{ range 3 }}{{ . }}{{ end }}{{ range $i, $v := .Values.list }}{{ if eq $i 2 }}{{ break }}{{ end }}{{ if eq $i 0 }}{{ continue }}{{ end }}{{ $v }}{{ end }}",
    ),
    (
        "with.yaml",
        "{{ with .Values.map }}{{ .b }}{{ .c.d }}{{ end }}{{ with .Values.missing }}m{{ else }}no{{ end }}{{ with .Values.empty }}e{{ else with .Values.s }}{{ . }}{{ end }}",
    ),
    (
        "define.yaml",
        "{{ define \"demo.item\" }}[{{ . }}]{{ end }}{{ template \"demo.item\" 5 }}{{ template \"demo.item\" .Values.s }}{{ template \"demo.item\" }}{{ block \"demo.block\" .Values.n }}b{{ . }}{{ end }}",
    ),
    (
        "funcs.yaml",
        "{{ len .Values.list }} {{ len .Values.s }} {{ len .Values.map }} {{ index .Values.list 1 }} {{ index .Values.map \"a\" }} {{ index .Values.map \"c\" \"d\" }} [{{ index .Values.map \"zz\" }}] {{ index .Values.list 3 0 }} {{ slice .Values.list 1 }} {{ not .Values.yes }} {{ not 0 }}",
    ),
    (
        "andor.yaml",
        "{{ or .Values.missing \"default\" }} {{ and 1 0 }} {{ and 1 2 }} {{ or 0 \"\" }} {{ or .Values.zero .Values.s }} {{ and .Values.yes .Values.list }} {{ .Values.n | or 0 }}",
    ),
    (
        "compare.yaml",
        "{{ eq .Values.n 3.0 }} {{ eq .Values.s \"hello\" \"x\" }} {{ eq .Values.s \"x\" \"hello\" }} {{ ne 1 2 }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1.5 2.5 }} {{ eq .Values.missing nil }} {{ eq (len .Values.list) 4 }} {{ lt .Values.n 10.0 }}",
    ),
    (
        "printf.yaml",
        "{{ printf \"%d|%5d|%-4d|%03d\" 3 42 7 5 }} {{ printf \"%s=%q\" \"a\" \"b\" }} {{ printf \"%v %v %v\" .Values.n .Values.big .Values.list }} {{ printf \"%.2f|%f|%e|%g\" 3.14159 .Values.half 1234.5 .Values.small }} {{ printf \"%d\" .Values.n }} {{ printf \"%s\" 3 }} {{ printf \"%s %s\" \"a\" }} {{ printf \"%x %X %o %b %c %U\" 255 255 8 5 65 65 }} {{ printf \"%t %v %T %T\" true nil .Values.n .Values.s }} {{ printf \"%5.1f|%-6s|%6s|\" 2.25 \"ab\" \"cd\" }} {{ printf \"%v\" .Values.map }} {{ printf \"%s\" .Values.list }} {{ printf \"%%\" }}",
    ),
    (
        "print2.yaml",
        "{{ print 1 2 }} {{ print \"a\" 1 2 \"b\" }} {{ println \"x\" 1 }}{{ print .Values.nothing }} {{ print .Values.list }}",
    ),
    (
        "escape.yaml",
        "{{ html .Values.html }} {{ js .Values.html }} {{ urlquery \"a b&c=d/é\" }} {{ .Values.html | html }}",
    ),
    (
        "pipes.yaml",
        "{{ .Values.s | printf \"%s!\" }} {{ \"x\" | printf \"%s-%s\" \"y\" }} {{ (index .Values.list 2).name }} {{ (.Values.map).c.d }} {{ .Values.missing | printf \"%v\" }} {{ len (slice .Values.list 1 3) }}",
    ),
    (
        "template.yaml",
        "{{ .Template.Name }} {{ .Template.BasePath }} {{ .Release.Name }} {{ .Release.Namespace }} {{ .Release.Revision }} {{ .Release.IsInstall }} {{ .Release.Service }}",
    ),
    (
        "numbers.yaml",
        "{{ 0x1p60 }} {{ 0x1.8p1 }} {{ 1_000 }} {{ 0b101 }} {{ 0o17 }} {{ 017 }} {{ 1.5e3 }} {{ -0x10 }} {{ printf \"%T %v\" 0x1p-2 0x1p-2 }} {{ 0X_1F }} {{ 1e3 }} {{ printf \"%T\" 1e3 }} {{ 1i }} {{ -2.5i }} {{ printf \"%T\" 017i }} {{ 017i }} {{ 0x1P+4 }}",
    ),
    (
        "whitespace.yaml",
        "line1\n{{- if true }}\n  kept: {{ .Values.s }}\n{{- end }}\n{{ range .Values.emptyList }}{{ end }}\nlast\n",
    ),
];

#[test]
fn engine_matches_helm_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let values = values();
    write_chart(dir.path(), &values, CASES);
    let expected = helm_render(dir.path()).expect("Helm renders the engine cases");
    let actual = ours(&values, CASES).expect("we render the engine cases");
    assert_eq!(expected.len(), CASES.len(), "Helm rendered every case");
    for (file, _) in CASES {
        let key = format!("{CHART}/templates/{file}");
        assert_eq!(
            actual.get(&key),
            expected.get(&key),
            "{file} differs from Helm"
        );
    }
}

/// Cases Helm rejects: we must fail too, on the same file and line, with
/// the same problem.
#[test]
fn errors_match_helm() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "nilptr.yaml",
            "ok\n{{ .Values.missing.x }}",
            "nil pointer evaluating interface {}.x",
        ),
        (
            "cmp.yaml",
            "{{ eq .Values.n 3 }}",
            "incompatible types for comparison",
        ),
        (
            "lt.yaml",
            "\n\n{{ lt .Values.s 3 }}",
            "incompatible types for comparison",
        ),
        (
            "undef.yaml",
            "{{ nope 1 }}",
            "function \"nope\" not defined",
        ),
        (
            "notmpl.yaml",
            "{{ template \"nowhere\" }}",
            "template \"nowhere\" not defined",
        ),
        ("unclosed.yaml", "{{ if true }}x", "unexpected EOF"),
        ("badvar.yaml", "{{ $x }}", "undefined variable \"$x\""),
        (
            "field.yaml",
            "{{ .Values.s.x }}",
            "can't evaluate field x in type interface {}",
        ),
        ("nilcmd.yaml", "{{ nil }}", "nil is not a command"),
        ("underscores.yaml", "{{ 1__0 }}", "\"1__0\""),
        ("hexfloat.yaml", "{{ 0x1.8 }}", "\"0x1.8\""),
        ("octal.yaml", "\n{{ 09 }}", "\"09\""),
        (
            "index.yaml",
            "{{ index .Values.list 10 }}",
            "index out of range: 10",
        ),
        (
            "range.yaml",
            "{{ range .Values.s }}{{ end }}",
            "range can't iterate over hello",
        ),
        (
            "args.yaml",
            "{{ .Values.n 1 }}",
            "n is not a method but has arguments",
        ),
    ];
    for (file, text, problem) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let values = values();
        write_chart(dir.path(), &values, &[(file, text)]);
        let helm = helm_render(dir.path()).expect_err("Helm rejects it");
        assert!(helm.contains(problem), "{file}: Helm said {helm:?}");
        let mine = ours(&values, &[(file, text)]).expect_err("we reject it");
        assert!(mine.contains(problem), "{file}: we said {mine:?}");
        let line = |msg: &str| {
            msg.split(&format!("{CHART}/templates/{file}:"))
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .map(str::to_string)
        };
        assert_eq!(
            line(&mine),
            line(&helm),
            "{file}: line differs: we said {mine:?}, Helm {helm:?}"
        );
    }
}
