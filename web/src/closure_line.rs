//! How a closure is named, the same on the console's pages and the office's public page: its
//! period ("dal … al …", or the one day) and its scope (the whole office, or a calendar's name).

use booking::store::closures::Closure;

use crate::error::Result;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::views::console::ClosureLine;

/// How the console and the public office page name a closure: its period, its scope.
pub async fn closure_line(st: &AppState, l: Lang, c: &Closure) -> Result<ClosureLine> {
    let period = if c.first_day == c.last_day {
        l.day(c.first_day)
    } else {
        format!(
            "{} {} {} {}",
            l.t("dal"),
            l.day(c.first_day),
            l.t("al"),
            l.day(c.last_day)
        )
    };
    let scope = match c.calendar_id {
        None => l.t("tutto l'ufficio").to_string(),
        Some(id) => st.store.calendar_settings(id).await?.name,
    };
    Ok(ClosureLine {
        id: c.id.to_string(),
        period,
        scope,
        reason: c.reason.clone(),
    })
}
