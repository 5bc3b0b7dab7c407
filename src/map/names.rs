//! Variable naming: turning secret keys into environment names, and the policy that refuses
//! names which could take over the child. Pure functions; the tables below are the contract.

/// Names refused exactly (compared upper-cased: some consumers, e.g. curl's proxy variables,
/// read lower-case spellings too). glibc's unsecure-environment list comes first.
const REFUSED: &[&str] = &[
    // glibc UNSECURE_ENVVARS (elf/dl-support / sysdeps/generic/unsecvars.h)
    "GCONV_PATH",
    "GETCONF_DIR",
    "GLIBC_TUNABLES",
    "HOSTALIASES",
    "LOCALDOMAIN",
    "LOCPATH",
    "NIS_PATH",
    "NLSPATH",
    "RESOLV_HOST_CONF",
    "RES_OPTIONS",
    "TMPDIR",
    "TZDIR",
    // shells
    "PATH",
    "IFS",
    "ENV",
    "BASH_ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "CDPATH",
    // interpreters and runtimes that load code from an environment variable
    "NODE_OPTIONS",
    "NODE_PATH",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PYTHONINSPECT",
    "PYTHONBREAKPOINT",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "PERL5DB",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    // proxies and CA bundles: redirect or intercept the child's TLS
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "FTP_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    // switches that turn TLS verification off altogether
    "NODE_TLS_REJECT_UNAUTHORIZED",
    "PYTHONHTTPSVERIFY",
    "GIT_SSL_NO_VERIFY",
];

/// Prefixes refused: the dynamic loaders, glibc malloc tuning, exported bash functions, the AWS
/// SDKs' own settings, and ours.
const REFUSED_PREFIXES: &[&str] = &[
    "LD_*",
    "DYLD_*",
    "MALLOC_*",
    "BASH_FUNC_*",
    "AWS_*",
    "SECRET_EXEC_*",
];

/// The rule (a name, or a `PREFIX*` pattern) that refuses a content-derived name, or `None`
/// when it may be set.
pub fn refusal(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    if let Some(hit) = REFUSED.iter().find(|r| **r == upper) {
        return Some(hit);
    }
    REFUSED_PREFIXES
        .iter()
        .find(|p| upper.starts_with(p.trim_end_matches('*')))
        .copied()
}

/// Turns a key path (nested keys joined by `_`) into a variable name: ASCII upper case (unless
/// `keep_case`), every character outside `[A-Za-z0-9_]` to `_`, a leading digit gets a `_`.
/// Returns `None` for an empty name.
pub fn from_key(prefix: &str, key: &str, keep_case: bool) -> Option<String> {
    let mut name = String::with_capacity(prefix.len() + key.len() + 1);
    name.push_str(prefix);
    for c in key.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        };
        name.push(if keep_case { c } else { c.to_ascii_uppercase() });
    }
    if name.is_empty() {
        return None;
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    Some(name)
}

/// The last `/`-segment of a secret name: the variable a non-JSON secret becomes.
pub fn last_segment(secret_name: &str) -> &str {
    secret_name.rsplit('/').next().unwrap_or(secret_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_key_table() {
        let rows: &[(&str, &str, bool, Option<&str>)] = &[
            ("", "username", false, Some("USERNAME")),
            (
                "",
                "dbInstanceIdentifier",
                false,
                Some("DBINSTANCEIDENTIFIER"),
            ),
            (
                "",
                "dbInstanceIdentifier",
                true,
                Some("dbInstanceIdentifier"),
            ),
            ("", "api-key.v2", false, Some("API_KEY_V2")),
            ("", "héllo", false, Some("H_LLO")),
            ("", "9lives", false, Some("_9LIVES")),
            ("DB_", "9lives", false, Some("DB_9LIVES")),
            ("", "", false, None),
            ("APP_", "", false, Some("APP_")),
            ("", "a b", false, Some("A_B")),
            ("", "REPLICA_host", false, Some("REPLICA_HOST")),
            ("", "=", false, Some("_")),
        ];
        for (prefix, key, keep, want) in rows {
            assert_eq!(
                from_key(prefix, key, *keep).as_deref(),
                *want,
                "{prefix}{key}"
            );
        }
    }

    /// Names the policy reaches through a prefix or in another case, with the rule that refuses
    /// them, and near misses it must let through.
    #[test]
    fn refusal_table() {
        let rows: &[(&str, Option<&str>)] = &[
            ("LD_PRELOAD", Some("LD_*")),
            ("ld_preload", Some("LD_*")),
            ("LD_LIBRARY_PATH", Some("LD_*")),
            ("LD_AUDIT", Some("LD_*")),
            ("DYLD_INSERT_LIBRARIES", Some("DYLD_*")),
            ("MALLOC_CHECK_", Some("MALLOC_*")),
            ("MALLOC_TRACE", Some("MALLOC_*")),
            ("BASH_FUNC_x%%", Some("BASH_FUNC_*")),
            ("BASH_FUNC_f%%", Some("BASH_FUNC_*")),
            ("AWS_ACCESS_KEY_ID", Some("AWS_*")),
            ("AWS_ENDPOINT_URL", Some("AWS_*")),
            ("AWS_REGION", Some("AWS_*")),
            ("aws_ca_bundle", Some("AWS_*")),
            ("SECRET_EXEC_ANYTHING", Some("SECRET_EXEC_*")),
            ("Path", Some("PATH")),
            ("http_proxy", Some("HTTP_PROXY")),
            ("all_proxy", Some("ALL_PROXY")),
            ("ftp_proxy", Some("FTP_PROXY")),
            ("USERNAME", None),
            ("PASSWORD", None),
            ("HOST", None),
            ("PORT", None),
            ("ENGINE", None),
            ("PATHS", None),
            ("MY_PATH", None),
            ("LD", None),
            ("AWS", None),
            ("AWSX_KEY", None),
            ("XLD_PRELOAD", None),
            ("SECRET_EXEC", None),
            ("HTTP_PROXY_HOST", None),
            ("DB_PATH", None),
        ];
        for (name, rule) in rows {
            assert_eq!(refusal(name), *rule, "{name}");
        }
    }

    /// The table users read in docs/mapping.md is the policy, entry for entry: every name and
    /// prefix it lists is refused (in either case), and it lists every rule there is.
    #[test]
    fn the_documented_table_is_the_policy() {
        let doc = include_str!("../../docs/mapping.md");
        let table = doc
            .split("## Refused names")
            .nth(1)
            .and_then(|s| s.split("\n\n|").nth(1))
            .and_then(|s| s.split("\n\n").next())
            .expect("docs/mapping.md has a refused-names table");
        let listed: Vec<&str> = table
            .lines()
            .skip(2)
            .filter_map(|row| row.rsplit('|').nth(1))
            .flat_map(|cell| cell.split('`').skip(1).step_by(2))
            .collect();
        let rules = REFUSED.len() + REFUSED_PREFIXES.len();
        assert_eq!(listed.len(), rules, "{listed:?}");
        for rule in &listed {
            let example = match rule.strip_suffix('*') {
                Some(stem) => format!("{stem}X"),
                None => (*rule).to_string(),
            };
            assert_eq!(refusal(&example), Some(*rule), "{example}");
            let lower = example.to_ascii_lowercase();
            assert_eq!(refusal(&lower), Some(*rule), "{lower}");
        }
        for rule in REFUSED.iter().chain(REFUSED_PREFIXES) {
            assert!(
                listed.contains(rule),
                "{rule} is missing from docs/mapping.md"
            );
        }
    }

    #[test]
    fn last_segment_table() {
        for (name, want) in [
            ("prod/db", "db"),
            ("token", "token"),
            ("a/b/c", "c"),
            ("a/", ""),
        ] {
            assert_eq!(last_segment(name), want);
        }
    }
}
