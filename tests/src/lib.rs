//! End-to-end test harness: a real `sportello` server (the same router and worker as the
//! binary) on a loopback port, over a real SQLite file or a real PostgreSQL database, driven by
//! a real HTTP client. The only thing tests control is the clock, so that "two hours later" or
//! "the day before" takes no waiting.
//!
//! PostgreSQL tests need `SPORTELLO_TEST_POSTGRES` (a server URL such as
//! `postgres://postgres@127.0.0.1:55432`); `scripts/test` starts one. Without it they are
//! skipped with a message, except under CI, where they fail.

use std::path::Path;
use std::sync::Arc;

use booking::store::OutboxMessage;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Europe::Rome;
use reqwest::StatusCode;
use sqlx::Connection;
use web::{AppState, Config, ManualClock};

pub use chrono::Weekday::{Fri, Mon, Thu, Tue, Wed};

pub mod cluster;
pub mod faults;
pub mod media;
mod ports;
pub mod seed;
pub mod smtp;
pub mod wire;

pub use ports::{free_port, free_ports};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Demo service ids (see `booking::demo`): the order in which the demo comune creates them.
pub mod demo {
    pub const SINDACO: i64 = 1;
    pub const COLLOQUIO_SOCIALE: i64 = 2;
    pub const EDILIZIA: i64 = 4;
    pub const TARI: i64 = 7;
    pub const CARTA_IDENTITA: i64 = 11;
}

/// Days a query parameter may name that every page must survive (the first page shown, no
/// panic): chrono's limits, the last four-digit year, year zero, a day that does not exist.
pub const FAR_DAYS: [&str; 5] = [
    "-262143-01-01",
    "+262142-12-31",
    "9999-12-31",
    "0000-01-01",
    "2026-02-30",
];

/// The tests' "today": `SPORTELLO_TEST_NOW` (an RFC 3339 instant) when set, else Monday
/// 23 November 2026, 11:00 in Rome. `scripts/test` runs the suite under several of them (a
/// Friday evening, a Sunday before a holiday, the eve of a DST change), so every test takes its
/// dates from this instant (`next_after`, `Server::next`) and never from the calendar.
pub fn test_now() -> DateTime<Utc> {
    match std::env::var("SPORTELLO_TEST_NOW") {
        Ok(v) if !v.trim().is_empty() => DateTime::parse_from_rfc3339(v.trim())
            .unwrap_or_else(|e| panic!("SPORTELLO_TEST_NOW={v}: {e}"))
            .with_timezone(&Utc),
        _ => rome(2026, 11, 23, 11, 0),
    }
}

/// A local Rome time as a UTC instant.
pub fn rome(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Rome.with_ymd_and_hms(y, m, d, h, min, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// `h:m` in Rome on `day`.
pub fn at(day: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    rome(day.year(), day.month(), day.day(), h, m)
}

/// The day in Rome of an instant.
pub fn day_of(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&Rome).date_naive()
}

/// The first `weekday` after the Rome day of `t` on which the demo offices are open (not a
/// national holiday), at `h:m` in Rome.
pub fn next_after(t: DateTime<Utc>, weekday: Weekday, h: u32, m: u32) -> DateTime<Utc> {
    let mut d = day_of(t);
    loop {
        d = d.succ_opt().expect("a later day");
        if d.weekday() == weekday && booking::holidays::national_on(d).is_none() {
            return at(d, h, m);
        }
    }
}

/// An instant as an iCalendar UTC date-time (`20261124T073000Z`).
pub fn ics_utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Makes the PostgreSQL database `url` names (server URL, then a new database's name).
pub async fn create_database(url: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let (server, name) = url
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("no database name in URL"))?;
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(&format!("{server}/postgres")).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await?;
    Ok(())
}

/// A fresh, empty database of the given kind, or `None` when PostgreSQL is not available
/// outside CI.
pub async fn fresh_database(db: Db, dir: &Path) -> Option<String> {
    match db {
        Db::Sqlite => Some(format!("sqlite://{}", dir.join("sportello.db").display())),
        Db::Postgres => {
            let Ok(base) = std::env::var("SPORTELLO_TEST_POSTGRES") else {
                if std::env::var_os("CI").is_some() {
                    panic!("SPORTELLO_TEST_POSTGRES is not set: run the tests with scripts/test");
                }
                eprintln!(
                    "skipped: SPORTELLO_TEST_POSTGRES is not set (scripts/test starts PostgreSQL)"
                );
                return None;
            };
            let base = base.trim_end_matches('/').to_string();
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&format!("{base}/postgres"))
                .await
                .expect("connect to the test PostgreSQL");
            let name = format!("t_{:016x}", rand::random::<u64>());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create test database");
            Some(format!("{base}/{name}"))
        }
    }
}

#[derive(Default)]
pub struct Options {
    pub smtp_port: Option<u16>,
    pub max_active_per_email: Option<i64>,
    pub verifications_per_day: Option<i64>,
    pub max_unverified_per_email: Option<i64>,
    pub room_heartbeat_seconds: Option<u64>,
    pub room_hello_seconds: Option<u64>,
    /// Per-client limits; the tests that are not about them book freely from 127.0.0.1.
    pub rate_limit: Option<(u32, u32)>,
    pub trusted_proxies: Option<String>,
    /// The booking form's proof of work, with this cost; off for the tests not about it
    /// (`Server::book` answers it when it is on).
    pub proof_of_work_cost: Option<u32>,
    /// TURN's shared secret and URLs (time-limited credentials on each room socket).
    pub turn: Option<(String, String)>,
    /// The town's patron saint's day ("DD/MM Name").
    pub patron_saint: Option<String>,
    /// The relay's UDP addresses and reactor threads (`--media-udp`, `--media-reactors`).
    pub media: Option<(String, usize)>,
    /// What drives the relay's connections (`--media-engine`) [default: webrtc].
    pub media_engine: Option<sfu::EngineKind>,
    /// The relay's ICE-TCP address (`--media-tcp`) [default: the engine's].
    pub media_tcp: Option<String>,
}

pub struct Server {
    pub base: String,
    /// The administration listener (`/posta`, `/metrics`), as `admin_listen` serves it.
    pub admin_base: String,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The page's status and its alerts are what a failing test needs to show.
        let alerts: Vec<&str> = self
            .body
            .split("role=\"alert\"")
            .skip(1)
            .map(|s| s.split("</div>").next().unwrap_or(""))
            .collect();
        write!(f, "{} {:?} {:?}", self.status, self.location, alerts)
    }
}

/// A `Server` is never taken apart: a test body `|s: Server| async move { ... }` that uses only
/// `s.state` would otherwise capture just that field (closures capture disjoint fields), and the
/// data folder (`_dir`) would be deleted under the running server when the closure returns.
impl Drop for Server {
    fn drop(&mut self) {}
}

impl Server {
    pub async fn start(db: Db) -> Option<Server> {
        Self::start_with(db, Options::default()).await
    }

    pub async fn start_with(db: Db, opts: Options) -> Option<Server> {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = fresh_database(db, dir.path()).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://127.0.0.1:{}", addr.port());
        let cfg = Config {
            data_dir: Some(dir.path().to_path_buf()),
            database_url: Some(url),
            public_url: Some(base.clone()),
            secret_key: Some("test-secret-key-test-secret-key-0123456789".into()),
            smtp_host: opts.smtp_port.map(|_| "127.0.0.1".to_string()),
            smtp_port: opts.smtp_port,
            smtp_security: opts.smtp_port.map(|_| booking::outbox::SmtpSecurity::None),
            mail_from: Some("Comune di Esempio <noreply@comune.esempio.it>".into()),
            max_active_per_email: opts.max_active_per_email,
            verifications_per_day: opts.verifications_per_day,
            max_unverified_per_email: opts.max_unverified_per_email,
            room_heartbeat_seconds: opts.room_heartbeat_seconds,
            room_hello_seconds: opts.room_hello_seconds,
            rate_limit_per_minute: Some(opts.rate_limit.map_or(1_000_000, |r| r.0)),
            rate_limit_burst: Some(opts.rate_limit.map_or(1_000_000, |r| r.1)),
            trusted_proxies: opts.trusted_proxies,
            proof_of_work: Some(opts.proof_of_work_cost.is_some()),
            proof_of_work_cost: opts.proof_of_work_cost,
            turn_secret: opts.turn.as_ref().map(|t| t.0.clone()),
            turn_urls: opts.turn.as_ref().map(|t| t.1.clone()),
            patron_saint: opts.patron_saint.clone(),
            media_udp: opts.media.as_ref().map(|m| m.0.clone()),
            media_reactors: opts.media.as_ref().map(|m| m.1),
            media_engine: opts.media_engine,
            media_tcp: opts.media_tcp,
            // The tests run over the demo comune.
            demo: Some(true),
            ..Config::default()
        };
        let clock = Arc::new(ManualClock::new(test_now()));
        let state = web::build_state(&cfg, clock.clone())
            .await
            .expect("server state");
        // The worker's own timer is effectively off: tests run it with `tick` when they want.
        let st = state.clone();
        tokio::spawn(async move {
            axum_serve(web::app::router(st), listener).await;
        });
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let admin_base = format!("http://{}", admin.local_addr().expect("addr"));
        let st = state.clone();
        tokio::spawn(async move {
            axum_serve(web::app::admin_router(st), admin).await;
        });
        let client = browser_client().build().expect("client");
        Some(Server {
            base,
            admin_base,
            state,
            clock,
            client,
            _dir: dir,
        })
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        self.state.now()
    }

    /// The first open `weekday` after the server's current day, at `h:m` in Rome.
    pub fn next(&self, weekday: Weekday, h: u32, m: u32) -> DateTime<Utc> {
        next_after(self.clock_now(), weekday, h, m)
    }

    /// Today (the server's clock) at `h:m` in Rome.
    pub fn today_at(&self, h: u32, m: u32) -> DateTime<Utc> {
        at(day_of(self.clock_now()), h, m)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> Page {
        self.as_browser().get(path).await
    }

    /// The whole response to a GET of `path` (headers included).
    pub async fn response(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Asserts the status a GET of `path` answers with.
    pub async fn expect_status(&self, path: &str, status: StatusCode) {
        assert_eq!(self.get(path).await.status, status, "GET {path}");
    }

    /// A GET on the administration listener (`/posta`, `/metrics`).
    pub async fn admin_get(&self, path: &str) -> Page {
        Browser {
            client: self.client.clone(),
            base: self.admin_base.clone(),
        }
        .get(path)
        .await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.as_browser().post(path, form).await
    }

    /// The CSRF token this client's cookie carries, read from a form page.
    pub async fn csrf(&self, form_page: &str) -> String {
        self.as_browser().csrf(form_page).await
    }

    fn as_browser(&self) -> Browser {
        Browser {
            client: self.client.clone(),
            base: self.base.clone(),
        }
    }

    /// Another browser, with its own cookies.
    pub fn browser(&self) -> Browser {
        self.browser_with(reqwest::header::HeaderMap::new())
    }

    /// A browser that reaches the server through a TLS-terminating proxy on this machine: every
    /// request says `X-Forwarded-Proto: https` (believed only with `trusted_proxies`).
    pub fn browser_behind_tls_proxy(&self) -> Browser {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "x-forwarded-proto",
            reqwest::header::HeaderValue::from_static("https"),
        );
        self.browser_with(headers)
    }

    fn browser_with(&self, headers: reqwest::header::HeaderMap) -> Browser {
        Browser {
            client: browser_client()
                .default_headers(headers)
                .build()
                .expect("client"),
            base: self.base.clone(),
        }
    }

    /// The office a demo service belongs to.
    pub async fn office_of(&self, service: i64) -> i64 {
        self.state
            .store
            .service(service)
            .await
            .expect("service")
            .office_id
    }

    /// Creates a staff account; returns its email and provisional password.
    pub async fn staff_account(&self, role: staff::Role, offices: &[i64]) -> (String, String) {
        let email = format!(
            "{}-{:08x}@comune.esempio.it",
            role.code(),
            rand::random::<u32>()
        );
        let (_, password) = self
            .state
            .accounts
            .create(
                &staff::NewAccount {
                    email: email.clone(),
                    name: format!("{} di prova", role.label(booking::i18n::Lang::IT)),
                    role,
                    offices: offices.to_vec(),
                    operator_id: None,
                },
                &booking::audit::Entry::by_command_line(
                    "account_creato",
                    "account",
                    None,
                    "test",
                    self.clock_now(),
                ),
                self.clock_now(),
            )
            .await
            .expect("create account");
        (email, password)
    }

    /// A browser logged in as a new staff member, past the forced password change.
    pub async fn staff(&self, role: staff::Role, offices: &[i64]) -> Browser {
        let (email, provisional) = self.staff_account(role, offices).await;
        let b = self.browser();
        let p = b.login(&email, &provisional).await;
        assert_eq!(p.location.as_deref(), Some("/ufficio/password"), "{p:?}");
        let p = b.change_password(&provisional, STAFF_PASSWORD).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
        b
    }

    /// One pass of the background worker at the current test time.
    pub async fn tick(&self) {
        web::worker::tick(&self.state).await.expect("worker pass");
    }

    pub async fn emails(&self, appointment_id: i64) -> Vec<OutboxMessage> {
        self.state
            .store
            .messages_for(appointment_id)
            .await
            .expect("outbox")
    }

    /// Cancels an appointment through the store, as `actor`, at the server's clock.
    pub async fn cancel(&self, id: i64, actor: booking::Actor, reason: &str) {
        self.state
            .store
            .cancel(
                id,
                actor,
                reason,
                &office_entry("annullato", id, self),
                self.clock_now(),
            )
            .await
            .unwrap();
    }

    /// Moves an appointment to `start` as the office does (same mode, no message), at the
    /// server's clock.
    pub async fn reschedule(&self, id: i64, start: DateTime<Utc>) {
        let entry = office_entry("spostato", id, self);
        self.state
            .store
            .reschedule(
                id,
                start,
                None,
                booking::Actor::Office,
                "",
                &entry,
                self.clock_now(),
            )
            .await
            .unwrap();
    }

    /// The appointment's email of this kind (emails of the same second have no order).
    pub async fn email_of_kind(&self, id: i64, kind: &str) -> OutboxMessage {
        self.emails(id)
            .await
            .into_iter()
            .find(|m| m.kind == kind)
            .unwrap_or_else(|| panic!("no {kind} email"))
    }

    /// The appointment's status as stored.
    pub async fn status(&self, id: i64) -> booking::Status {
        self.state.store.appointment(id).await.unwrap().status
    }

    /// The language an appointment's emails are written in, as stored.
    pub async fn language(&self, id: i64) -> String {
        self.state
            .store
            .appointment(id)
            .await
            .unwrap()
            .language
            .code()
            .to_string()
    }

    pub async fn appointment_count(&self) -> i64 {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM appointment")
            .fetch_one(self.state.store.pool())
            .await
            .expect("count")
            .try_get("n")
            .expect("n")
    }

    /// Fetches a proof-of-work challenge as the booking form's widget does and answers it.
    pub async fn pow_answer(&self) -> String {
        let c: web::pow::Challenge = self
            .client
            .get(self.url("/antiabuso/sfida"))
            .send()
            .await
            .expect("challenge")
            .json()
            .await
            .expect("challenge JSON");
        web::pow::solve(&c)
    }

    /// Books a slot through the pages as a citizen would, returning the appointment id. A phone
    /// number is given for a phone appointment only; the fiscal code is one made from `email`.
    pub async fn book(
        &self,
        service: i64,
        start: DateTime<Utc>,
        mode: &str,
        email: &str,
    ) -> Result<i64, Page> {
        self.book_as(service, start, mode, email, &fiscal_code_for(email))
            .await
    }

    /// As `book`, for the person with this fiscal code.
    pub async fn book_as(
        &self,
        service: i64,
        start: DateTime<Utc>,
        mode: &str,
        email: &str,
        fiscal_code: &str,
    ) -> Result<i64, Page> {
        let ts = start.timestamp().to_string();
        let form_page = self
            .get(&format!("/servizi/{service}/prenota?inizio={ts}"))
            .await;
        let Some(csrf) = csrf_in(&form_page.body) else {
            return Err(form_page);
        };
        let altcha = if form_page.body.contains("<altcha-widget") {
            self.pow_answer().await
        } else {
            String::new()
        };
        let p = self
            .post(
                &format!("/servizi/{service}/prenota"),
                &[
                    ("csrf", &csrf),
                    ("start", &ts),
                    ("mode", mode),
                    ("given_name", "Maria"),
                    ("family_name", "Rossi"),
                    ("email", email),
                    ("phone", if mode == "phone" { "079 123456" } else { "" }),
                    ("fiscal_code", fiscal_code),
                    ("reason", "Rinnovo della carta d'identità"),
                    ("consent", "on"),
                    ("altcha", &altcha),
                ],
            )
            .await;
        if p.status != StatusCode::SEE_OTHER {
            return Err(p);
        }
        let token = p
            .location
            .as_deref()
            .and_then(|l| l.strip_prefix("/inviata/"))
            .expect("redirect to the sent page");
        Ok(self
            .state
            .signer
            .verify(booking::token::Purpose::Sent, token)
            .expect("a token that only shows the sent page"))
    }

    /// Follows the verification link of the appointment's verification email.
    pub async fn verify(&self, id: i64) -> Page {
        let emails = self.emails(id).await;
        let v = emails
            .iter()
            .find(|m| m.kind == "verify")
            .expect("verification email");
        let link = link_in(&v.text, "/conferma/").expect("verification link");
        let path = link
            .strip_prefix(&self.base)
            .expect("link to this server")
            .to_string();
        let p = self.get(&path).await;
        match csrf_in(&p.body) {
            Some(csrf) => self.post(&path, &[("csrf", &csrf)]).await,
            // Already verified (a redirect to the booking) or refused (expired, cancelled).
            None => p,
        }
    }

    /// Books a slot and follows its verification link, as `book` and `verify` do, and returns the
    /// id of the confirmed appointment. Panics if either step is refused.
    pub async fn confirmed(
        &self,
        service: i64,
        start: DateTime<Utc>,
        mode: &str,
        email: &str,
    ) -> i64 {
        self.confirm(self.book(service, start, mode, email).await)
            .await
    }

    /// Follows the verification link of what `book` or `book_as` booked; panics if the booking
    /// or its verification was refused.
    pub async fn confirm(&self, booked: Result<i64, Page>) -> i64 {
        let id = match booked {
            Ok(id) => id,
            Err(p) => panic!("booking refused ({}): {}", p.status, p.body),
        };
        let p = self.verify(id).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "verification of {id}");
        id
    }

    /// Books and confirms a video appointment, returning its id.
    pub async fn video_appointment(&self, start: DateTime<Utc>, email: &str) -> i64 {
        self.confirmed(demo::EDILIZIA, start, "video", email).await
    }

    pub fn room_token(&self, id: i64, operator: bool) -> String {
        use booking::token::Purpose;
        let purpose = if operator {
            Purpose::RoomOperator
        } else {
            Purpose::RoomCitizen
        };
        self.state.signer.sign(purpose, id)
    }

    /// The "check your email" page the booker is sent to.
    pub fn sent_path(&self, id: i64) -> String {
        format!(
            "/inviata/{}",
            self.state.signer.sign(booking::token::Purpose::Sent, id)
        )
    }

    pub fn manage_path(&self, id: i64) -> String {
        format!(
            "/prenotazione/{}",
            self.state.signer.sign(booking::token::Purpose::Manage, id)
        )
    }
}

/// The audit entry of a change a test makes to an appointment straight through the store.
pub fn office_entry(action: &str, appointment: i64, s: &Server) -> booking::audit::Entry {
    booking::audit::Entry::by_command_line(
        action,
        "appointment",
        Some(appointment),
        "test",
        s.clock_now(),
    )
}

/// The password staff accounts of the tests choose at their first login.
pub const STAFF_PASSWORD: &str = "una frase abbastanza lunga";

/// A browser: an HTTP client with its own cookie jar, not following redirects.
pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
}

impl Browser {
    pub async fn get(&self, path: &str) -> Page {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        page(r).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .expect("POST");
        page(r).await
    }

    /// The CSRF token this browser's cookie carries, read from a form page.
    pub async fn csrf(&self, form_page: &str) -> String {
        let p = self.get(form_page).await;
        csrf_in(&p.body).unwrap_or_else(|| panic!("no csrf field in {form_page}: {}", p.status))
    }

    /// Asserts the status a GET of `path` answers with.
    pub async fn expect_status(&self, path: &str, status: StatusCode) {
        assert_eq!(self.get(path).await.status, status, "GET {path}");
    }

    /// Submits the login form.
    pub async fn login(&self, email: &str, password: &str) -> Page {
        let csrf = self.csrf("/ufficio/accesso").await;
        self.post(
            "/ufficio/accesso",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }

    /// Submits the password change form (the new password typed twice).
    pub async fn change_password(&self, current: &str, new: &str) -> Page {
        self.submit(
            "/ufficio/password",
            "/ufficio/password",
            &[("current", current), ("new", new), ("repeat", new)],
        )
        .await
    }

    /// Submits a console form found on `page` (for its CSRF token) to `action`.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf(page).await;
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post(action, &form).await
    }
}

async fn axum_serve(router: axum::Router, listener: tokio::net::TcpListener) {
    let app = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).await.expect("serve");
}

async fn page(r: reqwest::Response) -> Page {
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Page {
        status,
        location,
        body: r.text().await.unwrap_or_default(),
    }
}

/// A valid fiscal code made from `seed` (an email, whatever its case): distinct seeds, distinct
/// people (as far as tests go).
pub fn fiscal_code_for(seed: &str) -> String {
    let h = seed
        .to_lowercase()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let letter = |shift: u32| (b'A' + ((h >> shift) % 26) as u8) as char;
    let name: String = (0..6).map(|i| letter(5 * i)).collect();
    let month = b"ABCDEHLMPRST"[((h >> 37) % 12) as usize] as char;
    let first15 = format!(
        "{name}{:02}{month}{:02}{}{:03}",
        (h >> 30) % 100,
        1 + (h >> 41) % 28,
        letter(46),
        (h >> 51) % 1000
    );
    let check = booking::fiscal::check_char(first15.as_bytes()) as char;
    format!("{first15}{check}")
}

/// An HTTP client as the tests' browsers are: its own cookie jar, redirects not followed.
pub fn browser_client() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
}

/// Opens the form page at `url` with `client` (which keeps its CSRF cookie) and returns the
/// page's CSRF token.
pub async fn form_csrf(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let page = client.get(url).send().await?.text().await?;
    anyhow::Context::with_context(csrf_in(&page), || format!("no CSRF token on {url}"))
}

pub fn csrf_in(html: &str) -> Option<String> {
    let re = regex::Regex::new(r#"name="csrf" value="([A-Za-z0-9_-]+)""#).unwrap();
    re.captures(html).map(|c| c[1].to_string())
}

/// The first link in `text` whose path starts with `prefix`.
pub fn link_in(text: &str, prefix: &str) -> Option<String> {
    let re = regex::Regex::new(r#"https?://[^\s"<>]+"#).unwrap();
    let found = re
        .find_iter(text)
        .map(|m| m.as_str().to_string())
        .find(|u| u.contains(prefix));
    found
}

/// Runs a test body once per database kind: with a started `Server`, or (`db` form) with the
/// `Db` itself, for tests that start their own servers.
#[macro_export]
macro_rules! on_both_databases {
    (db $name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)(Db::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)(Db::Postgres).await;
            }
        }
    };
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(s) = Server::start(Db::Sqlite).await {
                    ($body)(s).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(s) = Server::start(Db::Postgres).await {
                    ($body)(s).await;
                }
            }
        }
    };
}

/// The server binary as its own process, and figures about it, for the load tools.
pub mod process {
    /// The flags that send the server's email to a plain SMTP server on this machine's `port`.
    pub fn plain_smtp_flags(port: &str) -> [&str; 6] {
        [
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            port,
            "--smtp-security",
            "none",
        ]
    }

    /// A `sportello` process on a free loopback port (plain HTTP), over `data_dir`, with
    /// `extra` flags; returns once it answers. Its URL is `base`.
    pub struct ServerProcess {
        pub child: std::process::Child,
        pub port: u16,
        pub base: String,
        /// The administration listener (`/metrics`).
        pub admin_base: String,
    }

    impl ServerProcess {
        /// Refuses to go on without the server binary, saying how to build it.
        pub fn require(bin: &std::path::Path) -> anyhow::Result<()> {
            anyhow::ensure!(
                bin.exists(),
                "{} not found: cargo build --release --bin sportello",
                bin.display()
            );
            Ok(())
        }

        pub async fn start(
            bin: &std::path::Path,
            data_dir: &std::path::Path,
            extra: &[&str],
        ) -> anyhow::Result<ServerProcess> {
            let (port, admin) = (crate::free_port(), crate::free_port());
            let child = std::process::Command::new(bin)
                .args([
                    "--tls",
                    "off",
                    "--data-dir",
                    &data_dir.display().to_string(),
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--admin-listen",
                    &format!("127.0.0.1:{admin}"),
                    // Every client of a load tool is 127.0.0.1: no per-client caps.
                    "--max-connections-per-client",
                    "1000000",
                    "--rate-limit-per-minute",
                    "4000000000",
                    "--rate-limit-burst",
                    "4000000000",
                ])
                .args(extra)
                .env("RUST_LOG", "error")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::inherit())
                .spawn()?;
            let base = format!("http://127.0.0.1:{port}");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while reqwest::get(format!("{base}/healthz")).await.is_err() {
                anyhow::ensure!(std::time::Instant::now() < deadline, "server did not start");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Ok(ServerProcess {
                child,
                port,
                base,
                admin_base: format!("http://127.0.0.1:{admin}"),
            })
        }

        pub fn pid(&self) -> u32 {
            self.child.id()
        }

        pub fn stop(mut self) -> anyhow::Result<()> {
            self.child.kill()?;
            self.child.wait()?;
            Ok(())
        }
    }

    /// (CPU seconds, resident KiB, open files) of a process, from /proc.
    pub fn stat(pid: u32) -> (f64, u64, usize) {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let cpu = (ticks(11) + ticks(12)) as f64 / 100.0;
        let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0);
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0);
        (cpu, rss, fds)
    }

    /// The q-quantile (0..=1) of the samples.
    pub fn percentile(v: &mut [f64], q: f64) -> f64 {
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(((v.len().max(1) - 1) as f64 * q) as usize)
            .copied()
            .unwrap_or(0.0)
    }

    /// The q-quantile of microsecond samples, in milliseconds.
    pub fn percentile_ms(v: &mut [u64], q: f64) -> f64 {
        v.sort_unstable();
        v.get(((v.len().max(1) - 1) as f64 * q) as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    }

    /// The cumulative buckets of histogram `name` in a Prometheus text (`/metrics`): (upper
    /// bound, count), in order, `+Inf` last.
    pub fn histogram(metrics: &str, name: &str) -> Vec<(f64, u64)> {
        let prefix = format!("{name}_bucket{{le=\"");
        metrics
            .lines()
            .filter_map(|l| {
                let (le, count) = l.strip_prefix(&prefix)?.split_once("\"} ")?;
                Some((le.parse().ok()?, count.parse().ok()?))
            })
            .collect()
    }

    /// The q-quantile (0..=1) of what a histogram counted between two readings of it, linear
    /// within the bucket it falls in (as Prometheus' `histogram_quantile`); `None` when it
    /// counted nothing. A quantile in the `+Inf` bucket is the last finite bound.
    pub fn histogram_quantile(before: &[(f64, u64)], after: &[(f64, u64)], q: f64) -> Option<f64> {
        let count = |i: usize| {
            let b = before.get(i).map_or(0, |b| b.1);
            after[i].1.saturating_sub(b)
        };
        let total = count(after.len().checked_sub(1)?);
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut lower = (0.0, 0u64);
        for (i, (le, _)) in after.iter().enumerate() {
            let c = count(i);
            if c as f64 >= rank {
                if le.is_infinite() {
                    return Some(lower.0);
                }
                let within = (rank - lower.1 as f64) / (c - lower.1).max(1) as f64;
                return Some(lower.0 + (le - lower.0) * within);
            }
            lower = (*le, c);
        }
        Some(lower.0)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_quantile_of_what_a_histogram_counted_between_two_readings() {
            let text = |a: u64, b: u64, c: u64| {
                format!("x_bucket{{le=\"0.001\"}} {a}\nx_bucket{{le=\"0.002\"}} {b}\nx_bucket{{le=\"+Inf\"}} {c}\nx_count {c}\n")
            };
            let before = histogram(&text(10, 10, 10), "x");
            assert_eq!(before, vec![(0.001, 10), (0.002, 10), (f64::INFINITY, 10)]);
            // Since then: 50 at most 1 ms, 40 between 1 and 2 ms, 10 beyond.
            let after = histogram(&text(60, 100, 110), "x");
            let q = |q| histogram_quantile(&before, &after, q).unwrap();
            assert!((q(0.25) - 0.0005).abs() < 1e-9, "{}", q(0.25));
            assert!((q(0.7) - 0.0015).abs() < 1e-9, "{}", q(0.7));
            assert_eq!(q(0.99), 0.002, "beyond the last bound: that bound");
            assert_eq!(histogram_quantile(&after, &after, 0.5), None);
            assert_eq!(histogram_quantile(&[], &[], 0.5), None);
        }
    }
}
