//! The console's search: appointments by booking code, email, phone, fiscal code or name.

use sqlx::Row;

use super::Store;
use crate::Error;

/// The most appointments one search shows.
pub const SEARCH_LIMIT: i64 = 50;

impl Store {
    /// The ids and offices of the appointments whose code, email or fiscal code (any omocode
    /// form) is `q`, whose phone holds its digits (six or more), or whose name holds it; the
    /// latest first, at most `SEARCH_LIMIT`. Anonymised ones have nothing to find.
    pub async fn search_appointments(&self, q: &str) -> Result<Vec<(i64, i64)>, Error> {
        let q: String = q
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect();
        if q.chars().count() < 2 {
            return Ok(Vec::new());
        }
        let code = crate::fiscal::normalise(&q);
        let holder = crate::fiscal::person(&code)
            .map(|p| format!("cf:{p}"))
            .unwrap_or_default();
        let digits: String = q.chars().filter(char::is_ascii_digit).collect();
        let phone = if digits.len() >= 6 {
            digits
        } else {
            String::new()
        };
        // A name, with LIKE's wildcards taken as letters.
        let name: String = q
            .to_lowercase()
            .chars()
            .filter(|c| *c != '%' && *c != '_')
            .collect();
        let rows = sqlx::query(
            "SELECT id, office_id FROM appointment WHERE anonymised_at IS NULL AND ( \
               upper(code) = $1 OR email_norm = $2 OR fiscal_code = $3 OR (holder = $4 AND $4 <> '') \
               OR ($5 <> '' AND replace(replace(replace(phone, ' ', ''), '-', ''), '.', '') LIKE '%' || $5 || '%') \
               OR ($6 <> '' AND lower(given_name || ' ' || family_name) LIKE '%' || $6 || '%') \
               OR ($6 <> '' AND lower(family_name || ' ' || given_name) LIKE '%' || $6 || '%')) \
             ORDER BY start_at DESC LIMIT $7",
        )
        .bind(q.to_uppercase())
        .bind(q.to_lowercase())
        .bind(&code)
        .bind(&holder)
        .bind(&phone)
        .bind(&name)
        .bind(SEARCH_LIMIT)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("office_id")?)))
            .collect()
    }
}
