//! Who waits for a place (`booking::store::waitlist`), for everyone in the office: the console's
//! "Lista d'attesa" page lists, for each office this person sees, each service's people in the
//! order seats go to them; a service's configuration page shows its own list the same way.

use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::context::*;
use crate::error::Result;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::views::console::*;

pub fn router() -> Router<AppState> {
    Router::new().route("/ufficio/lista-attesa", get(show))
}

/// One service's waitlist, as the console shows it.
pub async fn waiting_lines(st: &AppState, l: Lang, service_id: i64) -> Result<Vec<WaitingLine>> {
    Ok(st
        .store
        .waitlist_of(service_id)
        .await?
        .into_iter()
        .map(|e| {
            let r = &e.request;
            WaitingLine {
                name: r.contact.full_name(),
                email: r.contact.email.clone(),
                modes: r.modes.label(l),
                days: match r.only_day {
                    Some(d) => l.day(d),
                    None => r
                        .weekdays
                        .days()
                        .map(|d| WEEKDAY_NAMES[d.num_days_from_monday() as usize])
                        .map(|day| l.t(day))
                        .collect::<Vec<_>>()
                        .join(", "),
                },
                state: match (e.status.as_str(), e.verified_at) {
                    ("offered", _) => l.t("posto offerto").into(),
                    (_, Some(t)) => format!("{} {}", l.t("in attesa dal"), l.when(t, st.tz)),
                    _ => l.t("da confermare").into(),
                },
            }
        })
        .collect())
}

async fn show(Console(st, s): Console) -> Result<Response> {
    let l = s.l();
    let mut services = Vec::new();
    for o in s.offices(&st).await? {
        for sv in st.store.services_of(o.id, false).await? {
            let people = waiting_lines(&st, l, sv.id).await?;
            if !people.is_empty() {
                services.push(WaitlistGroup {
                    id: format!("wl-{}", sv.id),
                    title: format!("{} — {}", o.name, sv.title),
                    people,
                });
            }
        }
    }
    let page = WaitlistConsolePage {
        frame: s.frame("attesa"),
        services,
    };
    s.ui.page(StatusCode::OK, page)
}
