//! The catalogue as the rest of the store and the web pages see it: offices, services,
//! calendars with their rules, and operators, answered from an in-memory copy that is read again
//! after a few seconds, or at once when an edit drops it (here, or in another process on the
//! same PostgreSQL: `events`).
//!
//! It exists so that every page and every booking can ask "which office, which service, which
//! rules" without a query each time. It owns the cache and the lookups by id. It reads only
//! through `crate::catalogue::Catalogue::load`; it knows nothing of appointments, seats or email,
//! and it does not edit the catalogue (that is the office's work, in `backoffice`).

use std::sync::{Arc, RwLock};
use std::time::Instant;

use crate::catalogue::Catalogue;
use crate::model::{Calendar, Office, Operator, Service};
use crate::slots::CalendarRules;
use crate::Error;

use super::Store;

/// How long the in-memory catalogue is trusted before it is read again. On PostgreSQL every
/// process sharing the database also drops it at once when any of them changes the catalogue
/// (`events::follow`); the lifetime stays as the bound if a notification is ever missed.
const CATALOGUE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

pub(super) type CachedCatalogue = Arc<RwLock<Option<(Instant, Arc<Catalogue>)>>>;

/// Forgets the cached catalogue: the next reader loads it again.
pub(super) fn drop_cache(cache: &CachedCatalogue) {
    *cache.write().expect("catalogue lock") = None;
}

impl Store {
    /// The catalogue, from memory when it is fresh enough.
    pub async fn catalogue(&self) -> Result<Arc<Catalogue>, Error> {
        if let Some((at, c)) = self.cache.read().expect("catalogue lock").as_ref() {
            if at.elapsed() < CATALOGUE_TTL {
                return Ok(c.clone());
            }
        }
        let c = Arc::new(Catalogue::load(&self.pool, &self.holidays).await?);
        *self.cache.write().expect("catalogue lock") = Some((Instant::now(), c.clone()));
        Ok(c)
    }

    /// Drops the cached catalogue: call after changing offices, services or calendars.
    pub fn invalidate_catalogue(&self) {
        drop_cache(&self.cache);
    }

    /// The offices in service, in display order (not the archived ones).
    pub async fn offices(&self) -> Result<Vec<Office>, Error> {
        let c = self.catalogue().await?;
        Ok(c.offices.iter().filter(|o| !o.archived).cloned().collect())
    }

    /// Every office, archived ones too: for names in the history (statistics, audit log).
    pub async fn all_offices(&self) -> Result<Vec<Office>, Error> {
        Ok(self.catalogue().await?.offices.clone())
    }

    /// An office, archived or not (its past appointments still name it).
    pub async fn office(&self, id: i64) -> Result<Office, Error> {
        let c = self.catalogue().await?;
        c.offices
            .iter()
            .find(|o| o.id == id)
            .cloned()
            .ok_or(Error::NotFound("office"))
    }

    pub async fn services_of(
        &self,
        office_id: i64,
        published_only: bool,
    ) -> Result<Vec<Service>, Error> {
        let c = self.catalogue().await?;
        Ok(c.services
            .iter()
            .filter(|s| s.office_id == office_id && (s.published || !published_only))
            .cloned()
            .collect())
    }

    pub async fn service(&self, id: i64) -> Result<Service, Error> {
        let c = self.catalogue().await?;
        c.services
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .ok_or(Error::NotFound("service"))
    }

    pub async fn calendar(&self, id: i64) -> Result<Calendar, Error> {
        self.of_calendar(id, |(cal, _)| cal.clone()).await
    }

    /// `f` of the calendar's cached settings and rules.
    async fn of_calendar<T>(
        &self,
        id: i64,
        f: impl FnOnce(&(Calendar, CalendarRules)) -> T,
    ) -> Result<T, Error> {
        let c = self.catalogue().await?;
        c.calendars
            .get(&id)
            .map(f)
            .ok_or(Error::NotFound("calendar"))
    }

    pub async fn calendars_of(&self, office_id: i64) -> Result<Vec<i64>, Error> {
        let c = self.catalogue().await?;
        let mut ids: Vec<i64> = c
            .calendars
            .values()
            .filter(|(cal, _)| cal.office_id == office_id)
            .map(|(cal, _)| cal.id)
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// The operators who serve a calendar, the proposed one first.
    pub async fn operators_of(&self, calendar_id: i64) -> Result<Vec<Operator>, Error> {
        Ok(self
            .catalogue()
            .await?
            .operators
            .get(&calendar_id)
            .cloned()
            .unwrap_or_default())
    }

    pub async fn operator(&self, id: i64) -> Result<Operator, Error> {
        let c = self.catalogue().await?;
        c.all_operators
            .get(&id)
            .cloned()
            .ok_or(Error::NotFound("operator"))
    }

    /// The name of an appointment's operator: "" when none is assigned, or when the operator is
    /// no longer known.
    pub async fn operator_name(&self, id: Option<i64>) -> String {
        match id {
            Some(id) => self.operator(id).await.map(|o| o.name).unwrap_or_default(),
            None => String::new(),
        }
    }

    /// The rules of a calendar, ready for the slot engine.
    pub async fn calendar_rules(&self, calendar_id: i64) -> Result<CalendarRules, Error> {
        self.of_calendar(calendar_id, |(_, r)| r.clone()).await
    }
}
