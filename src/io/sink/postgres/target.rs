//! Where a PostgreSQL sink writes, as `--sink` names it: the server (libpq's URL), how the
//! connection is secured (`sslmode`, `sslrootcert`), the results table and, for update mode,
//! the key columns rows are upserted on.

use super::tls::{SslMode, Tls};
use crate::io::sink::upsert::{is_plain_name, key_fields};
use crate::{Error, Result};

/// Where a PostgreSQL sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresTarget {
    /// The connection URL without spate's options (`table`, `key`) and TLS settings.
    pub url: String,
    /// How the connection is secured.
    pub tls: Tls,
    /// The results table (`name` or `schema.name`).
    pub table: String,
    /// The columns a result row is upserted on (`key=a,b`): its primary key. Empty: rows are
    /// appended.
    pub key: Vec<String>,
}

impl PostgresTarget {
    /// Parses `postgres://USER[:PASSWORD]@HOST:PORT/DB?table=T[&key=C1,C2][&OPTION=…]`
    /// (libpq's options pass through; `sslmode` and `sslrootcert` as [`Tls`] reads them);
    /// `None` when `text` is not a PostgreSQL URL.
    pub fn parse(text: &str) -> Result<Option<Self>> {
        if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
            return Ok(None);
        }
        let refused = |why: &str| Error::config("--sink", redacted(text), why);
        let (base, query) = text.split_once('?').unwrap_or((text, ""));
        let (mut table, mut key, mut options) = (None, Vec::new(), Vec::new());
        let mut tls = Tls {
            mode: SslMode::Prefer,
            root_cert: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            if let Some(name) = pair.strip_prefix("table=") {
                table = Some(name.to_string());
            } else if let Some(mode) = pair.strip_prefix("sslmode=") {
                tls.mode = SslMode::parse(mode).ok_or_else(|| {
                    refused("sslmode takes disable, prefer, require, verify-ca or verify-full")
                })?;
            } else if let Some(path) = pair.strip_prefix("sslrootcert=") {
                tls.root_cert = Some(path.into());
            } else if let Some(columns) = pair.strip_prefix("key=") {
                key = key_fields(columns).ok_or_else(|| {
                    refused("key= takes the result fields rows are upserted on, as NAME,NAME of letters, digits and _")
                })?;
            } else {
                options.push(pair);
            }
        }
        let table = table.ok_or_else(|| {
            refused("name the results table: postgres://USER@HOST:PORT/DB?table=NAME")
        })?;
        if !is_table_name(&table) {
            return Err(refused(
                "the table must be NAME or SCHEMA.NAME of letters, digits and _ (not starting with a digit)",
            ));
        }
        if matches!(tls.mode, SslMode::VerifyCa | SslMode::VerifyFull) && tls.root_cert.is_none() {
            return Err(refused(
                "verify-ca and verify-full check the server's certificate against sslrootcert=PATH (the CA's PEM file): give it",
            ));
        }
        let url = match options.is_empty() {
            true => base.to_string(),
            false => format!("{base}?{}", options.join("&")),
        };
        (with_option(&url, "sslmode", tls.mode.for_client()).parse::<tokio_postgres::Config>())
            .map_err(|e| refused(&format!("not a PostgreSQL URL: {e}")))?;
        Ok(Some(PostgresTarget {
            url,
            tls,
            table,
            key,
        }))
    }
}

impl PostgresTarget {
    /// The URL tokio-postgres connects with: its `sslmode` (the certificate checks are the
    /// connector's, [`Tls::connector`]).
    pub fn client_url(&self) -> String {
        with_option(&self.url, "sslmode", self.tls.mode.for_client())
    }
}

/// `url` with `name=value` added to its options.
fn with_option(url: &str, name: &str, value: &str) -> String {
    let joint = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joint}{name}={value}")
}

impl std::fmt::Display for PostgresTarget {
    /// The URL with spate's options, its password hidden.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut url = redacted(&self.url);
        if self.tls.mode != SslMode::Prefer {
            url = with_option(&url, "sslmode", self.tls.mode.name());
        }
        if let Some(path) = &self.tls.root_cert {
            url = with_option(&url, "sslrootcert", &path.display().to_string());
        }
        write!(f, "{}", with_option(&url, "table", &self.table))?;
        if !self.key.is_empty() {
            write!(f, "&key={}", self.key.join(","))?;
        }
        Ok(())
    }
}

/// `url` with the password, if any, replaced by `***`.
pub(super) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{name}:***@{host}")
        }
        _ => url.to_string(),
    }
}

/// True for `name` or `schema.name` (each a plain name).
fn is_table_name(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() <= 2 && parts.iter().all(|p| is_plain_name(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_its_table_and_key_and_keeps_libpq_options() {
        let text =
            "postgres://u:secret@h:5432/db?table=tx&key=user_id,window_start&sslmode=disable";
        let target = PostgresTarget::parse(text).unwrap().unwrap();
        assert_eq!(target.url, "postgres://u:secret@h:5432/db");
        assert_eq!(
            target.client_url(),
            "postgres://u:secret@h:5432/db?sslmode=disable"
        );
        assert_eq!((target.table.as_str(), target.key.len()), ("tx", 2));
        assert_eq!(
            target.to_string(),
            "postgres://u:***@h:5432/db?sslmode=disable&table=tx&key=user_id,window_start"
        );
        assert!(PostgresTarget::parse("file:out").unwrap().is_none());
        assert!(PostgresTarget::parse("postgres://h/db?table=public.tx").is_ok());
    }

    #[test]
    fn a_url_spate_cannot_write_to_is_refused_without_its_password() {
        for (url, why) in [
            ("postgres://u:pw@h/db", "name the results table"),
            ("postgres://u:pw@h/db?table=a;drop", "NAME or SCHEMA.NAME"),
            ("postgres://u:pw@h/db?table=a&key=x y", "key="),
            (
                "postgres://u:pw@h/db?table=a&sslmode=verify-full",
                "sslrootcert",
            ),
            (
                "postgres://u:pw@h/db?table=a&sslmode=always",
                "sslmode takes",
            ),
        ] {
            let refused = PostgresTarget::parse(url).unwrap_err().to_string();
            assert!(
                refused.contains(why) && !refused.contains("pw"),
                "{refused}"
            );
        }
    }
}
