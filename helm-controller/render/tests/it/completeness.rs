//! The functions that complete sprig's and Helm's maps (paths, URLs,
//! base32, the must* forms, date arithmetic, Go's regexp syntax,
//! toYamlPretty), and their failures, against Helm.

use crate::functions::VALUES;
use crate::harness::{assert_same, helm, ours};

const CASES: &[(&str, &str)] = &[
    (
        "paths.yaml",
        r#"{{ base "a/b/c.txt" }}|{{ dir "a/b/c.txt" }}|{{ clean "a//b/../c/." }}|{{ ext "x.tar.gz" }}|{{ isAbs "/x" }}|{{ osBase "/" }}|{{ osDir "" }}|{{ osClean "../a/./b/" }}|{{ osExt "a.b/c" }}|{{ osIsAbs "x" }}|{{ base "" }}|{{ dir "/a" }}|{{ clean "/../.." }}"#,
    ),
    (
        "base32.yaml",
        r#"{{ b32enc "hello" }}|{{ b32dec "NBSWY3DP" }}|{{ b32enc "" }}|{{ b32enc "a" }}|{{ b32enc "abcd" }}|{{ b32dec (b32enc "abcdef") }}|{{ b32dec "NBSWY3D!" }}|{{ b32dec "NBSWY" }}"#,
    ),
    (
        "abbrevboth.yaml",
        r#"{{ abbrevboth 5 10 "1234 5678 9123" }}|{{ abbrevboth 0 10 "1234 5678 9123" }}|{{ abbrevboth 3 4 "abcdefgh" }}|{{ abbrevboth 10 7 "abcdefghijklmnopq" }}|{{ abbrevboth 20 8 "abcdefghijklmnopqrstuvwxyz" }}|{{ abbrevboth 1 10 "short" }}"#,
    ),
    (
        "dates.yaml",
        r#"{{ dateModify "1h30m" (toDate "2006-01-02" "2024-05-06") | date "2006-01-02 15:04" }}|{{ date_modify "bad" (toDate "2006-01-02" "2024-05-06") | date "2006-01-02 15:04" }}|{{ mustDateModify "-24h" (toDate "2006-01-02" "2024-05-06") | date "2006-01-02" }}|{{ must_date_modify "1.5h" (toDate "2006-01-02" "2024-05-06") | date "15:04" }}|{{ durationRound "2h10m" }}|{{ durationRound "400h" }}|{{ durationRound "9000h" }}|{{ durationRound "3s" }}|{{ durationRound "x" }}|{{ date_in_zone "2006" (toDate "2006-01-02" "2024-05-06") "UTC" }}"#,
    ),
    (
        "lists.yaml",
        r#"{{ mustFirst .Values.list }}|{{ mustLast .Values.list }}|{{ mustRest .Values.list }}|{{ mustInitial .Values.list }}|{{ mustReverse .Values.list }}|{{ mustUniq (list 1 1 2) }}|{{ mustWithout .Values.list "b" }}|{{ mustHas "a" .Values.list }}|{{ mustSlice .Values.list 1 3 }}|{{ mustChunk 2 .Values.list }}|{{ mustCompact (list "" 0 "x" false) }}"#,
    ),
    (
        "json.yaml",
        r#"{{ mustFromJson "{\"a\":[1,2]}" | toJson }}|{{ mustFromJson "[1,\"x\"]" }}|{{ mustToToml (dict "a" 1 "b" (dict "c" "d")) }}"#,
    ),
    (
        "url.yaml",
        r#"{{ urlParse "https://u:p%40@example.com:8080/a%20b?q=1#f%21" | toJson }}|{{ urlJoin (dict "scheme" "http" "host" "h:1" "path" "/x y" "query" "a=b" "fragment" "top") }}|{{ urlParse "mailto:me@x.org" | toJson }}|{{ urlJoin (urlParse "//host/p") }}|{{ urlJoin (urlParse "https://a.b/c?d#e") }}|{{ urlParse "/just/a/path" | toJson }}|{{ getHostByName "localhost" }}"#,
    ),
    (
        "pretty.yaml",
        "{{ toYamlPretty .Values.map }}\n---\n{{ toYamlPretty .Values }}\n---\n{{ toYamlPretty (list (dict \"a\" (list 1 2)) \"x\") }}",
    ),
    (
        "regex.yaml",
        r#"{{ regexMatch "^[\\w-\\.]+$" "a-b.c" }}|{{ regexMatch "^[\\d-z]+$" "1-z" }}|{{ regexFind "a{,3}" "xa{,3}" }}|{{ regexFind "{foo}" "x{foo}" }}|{{ regexReplaceAll "\\Q1.5\\E" "v1.5" "X" }}|{{ regexMatch "[" "x" }}|{{ regexFindAll "a*" "baaab" -1 }}|{{ regexSplit "a*" "baaab" -1 }}|{{ regexSplit "," "a,b,c" 2 }}|{{ regexSplit "," "a,b,c" 0 }}|{{ regexSplit "x*" "" -1 }}|{{ regexQuoteMeta "a-b#c&d" }}|{{ regexMatch "^\\w+$" "é" }}|{{ mustRegexMatch "^x" "x" }}|{{ mustRegexFindAll "x" "xx" 1 }}|{{ mustRegexFind "[0-9]+" "ab12" }}|{{ mustRegexReplaceAll "(b)" "abc" "<$1>" }}|{{ mustRegexReplaceAllLiteral "b" "abc" "$1" }}|{{ mustRegexSplit "-" "a-b" -1 }}|{{ regexReplaceAll "(?i)HELLO" "hello there" "bye" }}|{{ regexFind "\\101+" "xAAy" }}|{{ regexFindAll "[[:upper:]]" "aBcD" -1 }}"#,
    ),
];

#[test]
fn completing_functions_match_helm() {
    assert_same(VALUES, CASES);
}

#[test]
fn completing_function_errors_match_helm() {
    let mut differ = Vec::new();
    for (i, text) in [
        r#"{{ mustRegexMatch "[a" "x" }}"#,
        r#"{{ regexFind "(a" "x" }}"#,
        r#"{{ mustRegexSplit "a**" "x" -1 }}"#,
        r#"{{ mustRegexReplaceAll "\\y" "x" "" }}"#,
        r#"{{ regexFindAll "a)" "x" -1 }}"#,
        r#"{{ mustRegexFind "*" "x" }}"#,
        r#"{{ mustRegexMatch "(?=x)" "x" }}"#,
        r#"{{ mustDateModify "1d" now }}"#,
        r#"{{ mustDateModify "1" now }}"#,
        r#"{{ first 1 }}"#,
        r#"{{ mustFirst "x" }}"#,
        r#"{{ mustHas 1 2 }}"#,
        r#"{{ concat (list 1) 2 }}"#,
        r#"{{ urlParse "%zz" }}"#,
        r#"{{ urlParse ":x" }}"#,
        r#"{{ mustFromJson "{" }}"#,
    ]
    .into_iter()
    .enumerate()
    {
        let file = format!("e{i}.yaml");
        let theirs = helm(VALUES, &[(&file, text)]).expect_err("Helm fails");
        let mine = ours(VALUES, &[(&file, text)]).expect_err("we fail");
        if theirs != mine {
            differ.push(format!("{text}\n  helm: {theirs}\n  ours: {mine}"));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
