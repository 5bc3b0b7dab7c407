//! URLs a setting names, split once by `http::Uri`: scheme, host, port and user info come from
//! here, so no module splits `host:port` by hand (an IPv6 literal, a user-info `@` and a port
//! that is not a number are each handled in one place).

/// The authority of an absolute URL.
#[derive(Debug, PartialEq, Eq)]
pub struct Authority<'a> {
    /// As written (an IPv6 literal keeps its brackets), for a Host header or a message.
    pub written: &'a str,
    /// `written` without the brackets of an IPv6 literal: what to connect to.
    pub bare: &'a str,
    /// The text after the host's `:`, when there is one (`http::Uri` keeps a port that is not a
    /// number, reporting none).
    pub port_text: Option<&'a str>,
    /// `user[:password]@` precedes the host.
    pub user_info: bool,
}

impl Authority<'_> {
    /// The written port as a number; `Err` when one is written that is not 0 to 65535.
    pub fn port(&self) -> Result<Option<u16>, ()> {
        self.port_text
            .map(|p| p.parse::<u16>().map_err(|_| ()))
            .transpose()
    }
}

/// Parses `text` as an absolute URL; `None` when `http::Uri` cannot.
pub fn parse(text: &str) -> Option<http::Uri> {
    let uri: http::Uri = text.parse().ok()?;
    uri.scheme()?;
    Some(uri)
}

/// The authority of `uri`, split; `None` when it has none.
pub fn authority(uri: &http::Uri) -> Option<Authority<'_>> {
    let a = uri.authority()?;
    let text = a.as_str();
    let (user_info, host_port) = match text.rsplit_once('@') {
        Some((_, hp)) => (true, hp),
        None => (false, text),
    };
    let written = a.host();
    let after = host_port.get(written.len()..).unwrap_or("");
    let bare = written
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(written);
    Some(Authority {
        written,
        bare,
        port_text: after.strip_prefix(':'),
        user_info,
    })
}

/// Whether the URL has a path other than `/`, a query or a fragment.
pub fn has_path_or_query(uri: &http::Uri, text: &str) -> bool {
    !matches!(uri.path(), "" | "/") || uri.query().is_some() || text.contains('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        let rows: &[(&str, &str, &str, Option<&str>, bool)] = &[
            ("http://h", "h", "h", None, false),
            ("http://h:80/x", "h", "h", Some("80"), false),
            ("http://[::1]:9", "[::1]", "::1", Some("9"), false),
            ("http://u:p@h:x", "h", "h", Some("x"), true),
            ("https://h:99999", "h", "h", Some("99999"), false),
            ("http://:1", "", "", Some("1"), false),
        ];
        for (text, written, bare, port, user) in rows {
            let uri = parse(text).unwrap_or_else(|| panic!("{text}"));
            let a = authority(&uri).unwrap();
            assert_eq!(
                (a.written, a.bare, a.port_text, a.user_info),
                (*written, *bare, *port, *user),
                "{text}"
            );
        }
        let port = |t: &str| authority(&parse(t).unwrap()).unwrap().port();
        assert_eq!(port("http://h:8080"), Ok(Some(8080)));
        assert_eq!(port("http://h"), Ok(None));
        assert_eq!(port("http://h:99999"), Err(()));
        assert_eq!(port("http://h:x"), Err(()));
        for bad in ["", "h:1", "http://a b", "http://[::1", "/path"] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        let uri = parse("http://h/").unwrap();
        assert!(!has_path_or_query(&uri, "http://h/"));
        for t in ["http://h/x", "http://h?q", "http://h#f"] {
            assert!(has_path_or_query(&parse(t).unwrap(), t), "{t}");
        }
    }
}
