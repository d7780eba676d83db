//! The schema's migrations, embedded in the binary at compile time (`build.rs` lists
//! `migrations/*.sql`), read the way sqlx reads a directory of them: `<version>_<description>.sql`,
//! the checksum over the file's text, `-- no-transaction` on the first line to run it outside a
//! transaction. A database migrated by an earlier build (which embedded them with sqlx's
//! `migrate!` macro) sees the same versions and checksums.

use std::borrow::Cow;

use futures_util::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// `(file name, text)` of every migration, in the order of their names.
static FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// The migrator of the schema, over the embedded files.
pub(super) async fn migrator() -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Embedded).await
}

#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async {
            FILES
                .iter()
                .map(|(name, sql)| migration(name, sql))
                .collect()
        })
    }
}

fn migration(name: &str, sql: &'static str) -> Result<Migration, BoxDynError> {
    let (version, rest) = name
        .split_once('_')
        .ok_or_else(|| format!("migration {name:?}: expected <version>_<description>.sql"))?;
    let version: i64 = version
        .parse()
        .map_err(|_| format!("migration {name:?}: the version is not a number"))?;
    let kind = MigrationType::from_filename(rest);
    let description = rest.trim_end_matches(kind.suffix()).replace('_', " ");
    Ok(Migration::new(
        version,
        Cow::Owned(description),
        kind,
        Cow::Borrowed(sql),
        sql.starts_with("-- no-transaction"),
    ))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The embedded migrations are exactly what sqlx reads from the directory (and what its
    /// `migrate!` macro embedded): same versions, names, kinds, checksums and transaction modes.
    #[tokio::test]
    async fn embedded_migrations_are_what_sqlx_reads_from_the_directory() {
        let embedded = super::migrator().await.unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut read: Vec<_> = sqlx::migrate::resolve_blocking(&dir)
            .unwrap()
            .into_iter()
            .map(|(m, _)| m)
            .collect();
        read.sort_by_key(|m| m.version);
        let embedded: Vec<_> = embedded.iter().collect();
        assert_eq!(embedded.len(), read.len());
        assert!(embedded.len() >= 18);
        for (e, r) in embedded.iter().zip(&read) {
            assert_eq!(
                (e.version, &e.description, e.checksum.as_ref(), e.no_tx),
                (r.version, &r.description, r.checksum.as_ref(), r.no_tx)
            );
            assert_eq!(e.migration_type.suffix(), r.migration_type.suffix());
            assert_eq!(e.sql, r.sql);
        }
    }

    #[test]
    fn a_misnamed_migration_is_refused() {
        assert!(super::migration("init.sql", "").is_err());
        assert!(super::migration("first_init.sql", "").is_err());
        let m = super::migration("0019_two_words.sql", "-- no-transaction\nSELECT 1").unwrap();
        assert_eq!(
            (m.version, m.description.as_ref(), m.no_tx),
            (19, "two words", true)
        );
    }
}
