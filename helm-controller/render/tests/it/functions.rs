//! sprig and Helm functions, one template per group, against Helm.

use crate::harness::{assert_same, helm, ours};

pub const VALUES: &str = r#"
num: 3
big: 1000000
half: 0.5
s: "Hello World"
padded: "  spaced out  "
yes: yes
off: off
y: 1
oct: 017
under: 1_000
date: 2024-01-01
quoted: "123"
nothing: null
empty: ""
zero: 0
list: [3, "b", "a", 1]
names: [zeta, alpha, mid]
map: {b: 2, a: 1, nested: {deep: value}}
text: |
  line one
  line two
html: "<b>&</b>"
"#;

const CASES: &[(&str, &str)] = &[
    (
        "strings.yaml",
        r#"{{ upper .Values.s }}|{{ lower .Values.s }}|{{ title "hello wide world" }}|{{ untitle "Hello World" }}|{{ trim .Values.padded }}|{{ trimAll "$" "$$5.00$" }}|{{ trimSuffix "-x" "name-x" }}|{{ trimPrefix "v" "v1.2" }}|{{ repeat 3 "ab" }}|{{ replace " " "-" .Values.s }}|{{ nospace .Values.s }}|{{ trunc 5 .Values.s }}|{{ trunc -5 .Values.s }}|{{ substr 0 5 .Values.s }}|{{ initials .Values.s }}|{{ swapcase .Values.s }}|{{ snakecase "HelloWorldFoo" }}|{{ kebabcase "HelloWorld" }}|{{ camelcase "hello_world" }}|{{ plural "one" "many" 2 }}|{{ abbrev 8 .Values.s }}"#,
    ),
    (
        "predicates.yaml",
        r#"{{ contains "World" .Values.s }} {{ hasPrefix "Hell" .Values.s }} {{ hasSuffix "x" .Values.s }}"#,
    ),
    (
        "quote.yaml",
        r#"{{ quote .Values.s }} {{ quote .Values.num }} {{ quote .Values.big }} {{ squote .Values.half }} {{ quote "a\tb" }} {{ quote .Values.nothing }}|{{ quote "x" "y" }} {{ cat "a" 1 .Values.nothing "b" }}"#,
    ),
    (
        "indent.yaml",
        "x:\n{{ .Values.text | indent 2 }}\ny: {{ .Values.text | nindent 4 }}\nz:\n{{- toYaml .Values.map | nindent 2 }}",
    ),
    (
        "split.yaml",
        r#"{{ $p := split "." "a.b.c" }}{{ $p._1 }} {{ splitList "," "x,y,z" }} {{ join "-" .Values.names }} {{ join "," .Values.list }} {{ sortAlpha .Values.names }} {{ toStrings .Values.list }} {{ (splitn "." 2 "a.b.c")._1 }}"#,
    ),
    (
        "lists.yaml",
        r#"{{ list 1 "a" .Values.half }} {{ first .Values.list }} {{ last .Values.list }} {{ rest .Values.names }} {{ initial .Values.names }} {{ append .Values.names "new" }} {{ prepend .Values.names "new" }} {{ concat .Values.names (list "x") }} {{ reverse .Values.names }} {{ uniq (list 1 1 2 1) }} {{ without .Values.names "mid" }} {{ has "mid" .Values.names }} {{ compact (list 0 1 "" "x") }} {{ slice .Values.names 1 }} {{ until 3 }} {{ untilStep 0 10 3 }} {{ chunk 2 .Values.names }} {{ seq 3 }} {{ seq 2 5 }}"#,
    ),
    (
        "dicts.yaml",
        r#"{{ $d := dict "a" 1 "b" "two" }}{{ $d }} {{ get $d "b" }} [{{ get $d "zz" }}] {{ hasKey $d "a" }} {{ $_ := set $d "c" 3 }}{{ $d }} {{ $_ := unset $d "a" }}{{ $d }} {{ keys .Values.map | sortAlpha }} {{ pick .Values.map "a" }} {{ omit .Values.map "nested" }} {{ dig "nested" "deep" "def" .Values.map }} {{ dig "nested" "nope" "def" .Values.map }} {{ pluck "a" .Values.map (dict "a" 9) }} {{ merge (dict "a" 1) (dict "a" 2 "b" 3) }} {{ mergeOverwrite (dict "a" 1) (dict "a" 2 "b" 3) }} {{ deepCopy .Values.map }}"#,
    ),
    (
        "flow.yaml",
        r#"{{ default "d" .Values.missing }} {{ default "d" .Values.empty }} {{ default 5 .Values.zero }} {{ default "d" .Values.s }} {{ empty .Values.list }} {{ empty .Values.zero }} {{ empty .Values.off }} {{ coalesce .Values.nothing .Values.empty "c" }} {{ ternary "yes" "no" true }} {{ all 1 "a" true }} {{ any 0 "" }} {{ required "needed" .Values.s }}"#,
    ),
    (
        "math.yaml",
        r#"{{ add 1 2 3 }} {{ add .Values.num 1 }} {{ add1 .Values.num }} {{ sub 10 .Values.num }} {{ mul 2 .Values.num }} {{ div 7 2 }} {{ mod 7 2 }} {{ max 1 5 3 }} {{ min 4 2 8 }} {{ int .Values.half }} {{ int "42" }} {{ int64 .Values.big }} {{ float64 "1.5" }} {{ addf 1.5 1 }} {{ mulf 1.5 2 }} {{ divf 1 4 }} {{ floor 1.7 }} {{ ceil 1.2 }} {{ round 1.2345 2 }} {{ atoi "12" }}"#,
    ),
    (
        "reflect.yaml",
        r#"{{ typeOf .Values.num }} {{ typeOf .Values.s }} {{ typeOf .Values.list }} {{ typeOf .Values.map }} {{ typeOf .Values.nothing }} {{ typeOf (int .Values.num) }} {{ kindOf .Values.map }} {{ kindOf .Values.list }} {{ kindOf .Values.yes }} {{ kindIs "map" .Values.map }} {{ kindIs "string" .Values.num }} {{ typeIs "float64" .Values.num }} {{ deepEqual .Values.names .Values.names }}"#,
    ),
    (
        "yaml11.yaml",
        r#"{{ .Values.yes }} {{ .Values.off }} {{ .Values.true }} {{ .Values.oct }} {{ .Values.under }} {{ .Values.date }} {{ .Values.quoted }} {{ typeOf .Values.quoted }} {{ typeOf .Values.date }}"#,
    ),
    (
        "encoding.yaml",
        r#"{{ b64enc .Values.s }} {{ b64dec "SGVsbG8=" }} {{ sha256sum .Values.s }} {{ sha1sum "x" }} {{ adler32sum "abc" }} {{ toJson .Values.map }} {{ toJson .Values.html }} {{ toRawJson .Values.html }} {{ toJson .Values.big }} {{ toJson .Values.list }}"#,
    ),
    ("pretty.yaml", r#"{{ toPrettyJson .Values.map }}"#),
    (
        "regex.yaml",
        r#"{{ regexMatch "^H.*d$" .Values.s }} {{ regexFind "[a-z]+" .Values.s }} {{ regexFindAll "o" .Values.s -1 }} {{ regexReplaceAll "o(.)" .Values.s "0${1}" }} {{ regexReplaceAllLiteral "o" .Values.s "$1" }} {{ regexSplit " " .Values.s -1 }} {{ regexQuoteMeta "a.b*c" }}"#,
    ),
    (
        "fromyaml.yaml",
        r#"{{ $m := fromYaml "a: 1\nb: [x, y]\n" }}{{ $m.a }} {{ $m.b }} {{ (fromYaml "- 1").Error }} {{ fromYamlArray "- a\n- 2" }} {{ (fromJson "{\"k\": [1, 2]}").k }} {{ fromJsonArray "[1, \"x\"]" }}"#,
    ),
    (
        "define.yaml",
        "{{- define \"demo.name\" -}}{{ .Chart.Name }}-{{ .Release.Name }}{{- end -}}\nname: {{ include \"demo.name\" . }}\nlabel: {{ include \"demo.name\" . | upper | quote }}\nchecksum: {{ include \"demo.name\" . | sha256sum | trunc 8 }}",
    ),
    (
        "tpl.yaml",
        r#"{{ tpl "{{ .Values.s }}-{{ .Release.Namespace }}" . }} {{ tpl "{{ define \"inner\" }}in{{ end }}{{ include \"inner\" . }}" . }} {{ tpl (toYaml .Values.map) . | len }}"#,
    ),
    (
        "chart.yaml",
        r#"{{ .Chart.Name }} {{ .Chart.Version }} {{ .Chart.AppVersion }} {{ .Chart.APIVersion }} [{{ .Chart.Description }}] {{ .Capabilities.KubeVersion.Major }} {{ .Capabilities.KubeVersion.Version }} {{ .Capabilities.APIVersions.Has "apps/v1" }} {{ .Capabilities.APIVersions.Has "nope/v9" }} {{ .Template.Name }}"#,
    ),
    (
        "_helpers.tpl",
        "{{- define \"demo.helper\" -}}helped{{- end -}}",
    ),
    ("uses-helper.yaml", "{{ include \"demo.helper\" . }}"),
];

#[test]
fn functions_match_helm() {
    assert_same(VALUES, CASES);
}

#[test]
fn function_errors_match_helm() {
    for (file, text, problem) in [
        (
            "required.yaml",
            "{{ required \"a value is required\" .Values.missing }}",
            "a value is required",
        ),
        ("fail.yaml", "{{ fail \"stop here\" }}", "stop here"),
        (
            "type.yaml",
            "{{ upper .Values.half }}",
            "wrong type for value; expected string",
        ),
        (
            "arity.yaml",
            "{{ upper }}",
            "wrong number of args for upper: want 1 got 0",
        ),
        (
            "include.yaml",
            "{{ include \"nope\" . }}",
            "no template \"nope\"",
        ),
    ] {
        let helm_error = helm(VALUES, &[(file, text)]).expect_err("Helm fails");
        assert!(
            helm_error.contains(problem),
            "{file}: Helm said {helm_error:?}"
        );
        let our_error = ours(VALUES, &[(file, text)]).expect_err("we fail");
        assert!(our_error.contains(problem), "{file}: we said {our_error:?}");
        assert!(
            our_error.contains(&format!("demo/templates/{file}:1")),
            "{file}: we said {our_error:?}"
        );
    }
}
