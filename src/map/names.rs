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

    #[test]
    fn refusal_table() {
        let refused = [
            "LD_PRELOAD",
            "ld_preload",
            "LD_LIBRARY_PATH",
            "DYLD_INSERT_LIBRARIES",
            "GLIBC_TUNABLES",
            "GCONV_PATH",
            "MALLOC_CHECK_",
            "PATH",
            "IFS",
            "ENV",
            "BASH_ENV",
            "BASH_FUNC_x%%",
            "SHELLOPTS",
            "PS4",
            "PROMPT_COMMAND",
            "NODE_OPTIONS",
            "PYTHONPATH",
            "PYTHONSTARTUP",
            "PYTHONHOME",
            "PERL5LIB",
            "PERL5OPT",
            "RUBYOPT",
            "RUBYLIB",
            "JAVA_TOOL_OPTIONS",
            "_JAVA_OPTIONS",
            "JDK_JAVA_OPTIONS",
            "HTTPS_PROXY",
            "http_proxy",
            "NO_PROXY",
            "SSL_CERT_FILE",
            "REQUESTS_CA_BUNDLE",
            "AWS_ACCESS_KEY_ID",
            "AWS_ENDPOINT_URL",
            "SECRET_EXEC_ANYTHING",
            "GETCONF_DIR",
            "HOSTALIASES",
            "LOCALDOMAIN",
            "LOCPATH",
            "NIS_PATH",
            "NLSPATH",
            "RESOLV_HOST_CONF",
            "RES_OPTIONS",
            "TMPDIR",
            "TZDIR",
            "MALLOC_TRACE",
            "LD_AUDIT",
            "all_proxy",
            "ftp_proxy",
            "SSL_CERT_DIR",
            "CURL_CA_BUNDLE",
            "NODE_EXTRA_CA_CERTS",
            "GIT_SSL_CAINFO",
            "NODE_TLS_REJECT_UNAUTHORIZED",
            "PYTHONHTTPSVERIFY",
            "GIT_SSL_NO_VERIFY",
            "aws_ca_bundle",
        ];
        for name in refused {
            assert!(refusal(name).is_some(), "{name} should be refused");
        }
        for (name, rule) in [
            ("ld_preload", "LD_*"),
            ("AWS_REGION", "AWS_*"),
            ("Path", "PATH"),
            ("BASH_FUNC_f%%", "BASH_FUNC_*"),
        ] {
            assert_eq!(refusal(name), Some(rule), "{name}");
        }
        let allowed = [
            "USERNAME",
            "PASSWORD",
            "HOST",
            "PORT",
            "ENGINE",
            "PATHS",
            "MY_PATH",
            "LD",
            "AWS",
            "AWSX_KEY",
            "XLD_PRELOAD",
            "SECRET_EXEC",
            "HTTP_PROXY_HOST",
            "DB_PATH",
        ];
        for name in allowed {
            assert_eq!(refusal(name), None, "{name} should be allowed");
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
