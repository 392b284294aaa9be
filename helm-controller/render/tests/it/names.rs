//! Every function name Helm gives templates is defined here too. The lists
//! are written down from sprig v3's `genericMap` (functions.go) and Helm
//! v4's `funcMap` (pkg/engine/funcs.go, which drops `env` and `expandenv`);
//! a second test checks them against real Helm, so a list that drifts
//! from Helm fails as well.

use k3r_helm_render::funcs::helm_template;

use crate::harness::helm;

/// sprig v3 (as Helm v4 vendors it), without `env` and `expandenv`.
const SPRIG: &[&str] = &[
    // dates
    "ago",
    "date",
    "date_in_zone",
    "date_modify",
    "dateInZone",
    "dateModify",
    "duration",
    "durationRound",
    "htmlDate",
    "htmlDateInZone",
    "must_date_modify",
    "mustDateModify",
    "mustToDate",
    "now",
    "toDate",
    "unixEpoch",
    // strings
    "hello",
    "abbrev",
    "abbrevboth",
    "trunc",
    "trim",
    "upper",
    "lower",
    "title",
    "untitle",
    "substr",
    "repeat",
    "trimall",
    "trimAll",
    "trimSuffix",
    "trimPrefix",
    "nospace",
    "initials",
    "randAlphaNum",
    "randAlpha",
    "randAscii",
    "randNumeric",
    "swapcase",
    "shuffle",
    "snakecase",
    "camelcase",
    "kebabcase",
    "wrap",
    "wrapWith",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "quote",
    "squote",
    "cat",
    "indent",
    "nindent",
    "replace",
    "plural",
    "sha1sum",
    "sha256sum",
    "sha512sum",
    "adler32sum",
    "toString",
    // numbers and lists of strings
    "atoi",
    "int64",
    "int",
    "float64",
    "seq",
    "toDecimal",
    "split",
    "splitList",
    "splitn",
    "toStrings",
    "until",
    "untilStep",
    "add1",
    "add",
    "sub",
    "div",
    "mod",
    "mul",
    "randInt",
    "add1f",
    "addf",
    "subf",
    "divf",
    "mulf",
    "biggest",
    "max",
    "min",
    "maxf",
    "minf",
    "ceil",
    "floor",
    "round",
    "join",
    "sortAlpha",
    // defaults, JSON, reflection
    "default",
    "empty",
    "coalesce",
    "all",
    "any",
    "compact",
    "mustCompact",
    "fromJson",
    "toJson",
    "toPrettyJson",
    "toRawJson",
    "mustFromJson",
    "mustToJson",
    "mustToPrettyJson",
    "mustToRawJson",
    "ternary",
    "deepCopy",
    "mustDeepCopy",
    "typeOf",
    "typeIs",
    "typeIsLike",
    "kindOf",
    "kindIs",
    "deepEqual",
    // network, paths, encodings
    "getHostByName",
    "base",
    "dir",
    "clean",
    "ext",
    "isAbs",
    "osBase",
    "osClean",
    "osDir",
    "osExt",
    "osIsAbs",
    "b64enc",
    "b64dec",
    "b32enc",
    "b32dec",
    // data structures
    "tuple",
    "list",
    "dict",
    "get",
    "set",
    "unset",
    "hasKey",
    "pluck",
    "keys",
    "pick",
    "omit",
    "merge",
    "mergeOverwrite",
    "mustMerge",
    "mustMergeOverwrite",
    "values",
    "append",
    "push",
    "mustAppend",
    "mustPush",
    "prepend",
    "mustPrepend",
    "first",
    "mustFirst",
    "rest",
    "mustRest",
    "last",
    "mustLast",
    "initial",
    "mustInitial",
    "reverse",
    "mustReverse",
    "uniq",
    "mustUniq",
    "without",
    "mustWithout",
    "has",
    "mustHas",
    "slice",
    "mustSlice",
    "concat",
    "dig",
    "chunk",
    "mustChunk",
    // crypto, uuid, semver, flow
    "bcrypt",
    "htpasswd",
    "genPrivateKey",
    "derivePassword",
    "buildCustomCert",
    "genCA",
    "genCAWithKey",
    "genSelfSignedCert",
    "genSelfSignedCertWithKey",
    "genSignedCert",
    "genSignedCertWithKey",
    "encryptAES",
    "decryptAES",
    "randBytes",
    "uuidv4",
    "semver",
    "semverCompare",
    "fail",
    // regular expressions, URLs
    "regexMatch",
    "mustRegexMatch",
    "regexFindAll",
    "mustRegexFindAll",
    "regexFind",
    "mustRegexFind",
    "regexReplaceAll",
    "mustRegexReplaceAll",
    "regexReplaceAllLiteral",
    "mustRegexReplaceAllLiteral",
    "regexSplit",
    "mustRegexSplit",
    "regexQuoteMeta",
    "urlParse",
    "urlJoin",
];

/// Helm v4's own.
const HELM: &[&str] = &[
    "toToml",
    "mustToToml",
    "fromToml",
    "toYaml",
    "mustToYaml",
    "toYamlPretty",
    "fromYaml",
    "fromYamlArray",
    "toJson",
    "mustToJson",
    "fromJson",
    "fromJsonArray",
    "include",
    "tpl",
    "required",
    "lookup",
];

/// Go's text/template builtins.
const BUILTINS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "eq", "ne", "lt", "le", "gt", "ge", "print",
    "printf", "println", "html", "js", "urlquery", "call",
];

/// Names Helm does not define (sprig's environment access, and names
/// sprig or Helm spell differently); a template using one fails to parse.
const UNDEFINED: &[&str] = &[
    "env",
    "expandenv",
    "randSeededNumeric",
    "mustFromYaml",
    "mustToYamlPretty",
];

fn all() -> impl Iterator<Item = &'static str> {
    SPRIG.iter().chain(HELM).chain(BUILTINS).copied()
}

#[test]
fn every_function_helm_defines_is_defined() {
    let parses = |name: &str| {
        let text = format!("{{{{ if false }}}}{{{{ {name} }}}}{{{{ end }}}}");
        helm_template().parse(name, &text).is_ok()
    };
    let missing: Vec<&str> = all().filter(|name| !parses(name)).collect();
    assert!(
        missing.is_empty(),
        "functions Helm defines and k3r does not: {missing:?}"
    );
    let extra: Vec<&str> = UNDEFINED
        .iter()
        .copied()
        .filter(|name| parses(name))
        .collect();
    assert!(
        extra.is_empty(),
        "functions Helm does not define: {extra:?}"
    );
}

#[test]
fn the_lists_are_helms() {
    // One template per name, parsed but never executed.
    let files: Vec<(String, String)> = all()
        .map(|name| {
            (
                format!("{name}.yaml"),
                format!("{{{{ if false }}}}{{{{ {name} }}}}{{{{ end }}}}"),
            )
        })
        .collect();
    let templates: Vec<(&str, &str)> = files
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    helm("", &templates).expect("Helm defines every listed function");
    for name in UNDEFINED {
        let template = format!("{{{{ if false }}}}{{{{ {name} }}}}{{{{ end }}}}");
        let error = helm("", &[("x.yaml", &template)]).expect_err("Helm rejects the name");
        assert!(
            error.contains(&format!("function \"{name}\" not defined")),
            "{error}"
        );
    }
}
