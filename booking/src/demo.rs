//! The demo comune: the offices of a small Italian town (as in the Ozieri citizen manual, plus
//! the registry office with its ID-card service) with realistic weekly hours (closed on
//! national holidays, as every calendar is unless its office says otherwise: `crate::holidays`)
//! and operators, so a new user sees a working site at once. It goes only into a database the
//! server has just made, and only when the demo is asked for (the web crate's `demo` setting:
//! on by default only for the embedded default configuration); maintenance commands and
//! `sportello init` never seed it. Addresses use the reserved `esempio.it`-style demo domain,
//! never real ones.

use chrono::Weekday;
use sqlx::Executor;

use crate::model::{Mode, ModeSet};
use crate::slots::WeekdaySet;
use crate::store::Store;
use crate::Error;

struct Rule {
    days: &'static [Weekday],
    from: (u32, u32),
    to: (u32, u32),
    slot: u32,
    capacity: u32,
    modes: &'static [Mode],
}

struct DemoService {
    title: &'static str,
    description: &'static str,
    minutes: u32,
    instructions: &'static str,
    documents: &'static str,
    modes: &'static [Mode],
    /// The form asks for the fiscal code: one appointment per person, not per email.
    per_person: bool,
}

struct DemoOffice {
    name: &'static str,
    department: &'static str,
    email: &'static str,
    phone: &'static str,
    address: &'static str,
    moderated: bool,
    rules: &'static [Rule],
    operators: &'static [&'static str],
    services: &'static [DemoService],
}

use Mode::{InPerson as P, Phone as T, Video as V};
use Weekday::{Fri, Mon, Thu, Tue, Wed};

const ALL: &[Mode] = &[P, T, V];
const WEEK: &[Weekday] = &[Mon, Tue, Wed, Thu, Fri];
const TOWN_HALL: &str = "Piazza Municipio 1, 07014 Comune di Esempio";

const OFFICES: &[DemoOffice] = &[
    DemoOffice {
        name: "Sindaco",
        department: "Ufficio del Sindaco",
        email: "sindaco@comune.esempio.it",
        phone: "079 000 0001",
        address: TOWN_HALL,
        moderated: true,
        rules: &[Rule { days: &[Mon], from: (8, 0), to: (9, 0), slot: 15, capacity: 1, modes: &[P, V] }],
        operators: &["Segreteria del Sindaco"],
        services: &[DemoService {
            title: "Ricevimento del Sindaco",
            description: "Incontro con il Sindaco per segnalazioni, proposte e questioni di interesse pubblico.",
            minutes: 15,
            instructions: "La richiesta è valutata dalla segreteria del Sindaco, che conferma l'appuntamento via email.",
            documents: "",
            modes: &[P, V],
            per_person: false,
        }],
    },
    DemoOffice {
        name: "Servizi sociali",
        department: "Servizio 2.2 - Servizi alla persona",
        email: "servizisociali@comune.esempio.it",
        phone: "079 000 0002",
        address: "Via Roma 10, 07014 Comune di Esempio",
        moderated: false,
        rules: &[
            Rule { days: &[Tue], from: (16, 0), to: (17, 30), slot: 30, capacity: 1, modes: ALL },
            Rule { days: &[Thu], from: (9, 0), to: (12, 0), slot: 30, capacity: 2, modes: &[P, V] },
        ],
        operators: &["Anna Piras", "Giovanni Sanna"],
        services: &[
            DemoService {
                title: "Colloquio con l'assistente sociale",
                description: "Ascolto e orientamento per persone e famiglie in difficoltà, anziani, persone con disabilità.",
                minutes: 30,
                instructions: "Indica nel motivo, se puoi, l'argomento del colloquio: l'assistente sociale si preparerà.",
                documents: "Documento d'identità\nEventuale documentazione sanitaria o sociale utile al colloquio",
                modes: ALL,
                per_person: false,
            },
            DemoService {
                title: "Contributi e agevolazioni",
                description: "Informazioni e domande per contributi economici, bonus e agevolazioni comunali.",
                minutes: 20,
                instructions: "",
                documents: "Documento d'identità\nAttestazione ISEE in corso di validità",
                modes: ALL,
                per_person: false,
            },
        ],
    },
    DemoOffice {
        name: "Edilizia privata",
        department: "Servizio 3.1 - Urbanistica, Edilizia privata",
        email: "edilizia@comune.esempio.it",
        phone: "079 000 0003",
        address: TOWN_HALL,
        moderated: false,
        rules: &[
            Rule { days: &[Wed], from: (9, 0), to: (12, 0), slot: 30, capacity: 1, modes: ALL },
            Rule { days: &[Thu], from: (15, 30), to: (17, 30), slot: 30, capacity: 1, modes: &[V] },
        ],
        operators: &["Ing. Paolo Carta"],
        services: &[
            DemoService {
                title: "Pratiche edilizie (CILA, SCIA, permesso di costruire)",
                description: "Consulenza tecnica su pratiche edilizie presentate o da presentare.",
                minutes: 30,
                instructions: "Se la pratica è già presentata, indica nel motivo il numero di protocollo.",
                documents: "Numero di protocollo della pratica\nElaborati tecnici in formato digitale",
                modes: ALL,
                per_person: false,
            },
            DemoService {
                title: "Accesso agli atti",
                description: "Consultazione e copia di pratiche edilizie d'archivio.",
                minutes: 20,
                instructions: "",
                documents: "Documento d'identità\nRicevuta della richiesta di accesso agli atti",
                modes: &[P],
                per_person: false,
            },
        ],
    },
    DemoOffice {
        name: "Tributi IMU",
        department: "Servizio 3.1 - Tributi, IMU",
        email: "tributi.imu@comune.esempio.it",
        phone: "079 000 0004",
        address: TOWN_HALL,
        moderated: false,
        rules: &[Rule { days: &[Mon, Wed], from: (9, 0), to: (12, 0), slot: 15, capacity: 1, modes: ALL }],
        operators: &["Maria Deledda"],
        services: &[DemoService {
            title: "Calcolo e versamento IMU",
            description: "Assistenza per il calcolo dell'IMU, i versamenti e gli avvisi di accertamento.",
            minutes: 15,
            instructions: "",
            documents: "Visura catastale degli immobili\nEventuali avvisi ricevuti",
            modes: ALL,
            per_person: false,
        }],
    },
    DemoOffice {
        name: "Tributi TARI",
        department: "Servizio 3.1 - Tributi, TARI",
        email: "tributi.tari@comune.esempio.it",
        phone: "079 000 0005",
        address: TOWN_HALL,
        moderated: false,
        rules: &[Rule { days: &[Tue, Thu], from: (9, 0), to: (12, 0), slot: 15, capacity: 1, modes: ALL }],
        operators: &["Daniela Muraglia"],
        services: &[DemoService {
            title: "Iscrizione, variazione e cessazione TARI",
            description: "Dichiarazioni TARI, riduzioni e rimborsi.",
            minutes: 15,
            instructions: "",
            documents: "Documento d'identità\nContratto di locazione o atto di proprietà",
            modes: ALL,
            per_person: false,
        }],
    },
    DemoOffice {
        name: "Polizia locale",
        department: "Servizio 3.3 - Polizia Locale",
        email: "polizialocale@comune.esempio.it",
        phone: "079 000 0006",
        address: "Via Vittorio Emanuele 5, 07014 Comune di Esempio",
        moderated: false,
        rules: &[Rule { days: &[Fri], from: (9, 0), to: (11, 0), slot: 15, capacity: 1, modes: &[P, T] }],
        operators: &["Isp. Luca Manca"],
        services: &[
            DemoService {
                title: "Verbali e contravvenzioni",
                description: "Informazioni su verbali, ricorsi e pagamenti.",
                minutes: 15,
                instructions: "",
                documents: "Copia del verbale",
                modes: &[P, T],
                per_person: false,
            },
            DemoService {
                title: "Permessi e autorizzazioni",
                description: "Permessi di sosta, passi carrabili, occupazione di suolo pubblico.",
                minutes: 15,
                instructions: "",
                documents: "Documento d'identità",
                modes: &[P],
                per_person: false,
            },
        ],
    },
    DemoOffice {
        name: "SUAPE - Commercio e turismo",
        department: "Servizio 3.2 - SUAPE, Commercio, Promozione turistica",
        email: "commercio@comune.esempio.it",
        phone: "079 000 0007",
        address: TOWN_HALL,
        moderated: false,
        rules: &[Rule { days: WEEK, from: (10, 0), to: (12, 0), slot: 30, capacity: 1, modes: ALL }],
        operators: &["Francesca Serra"],
        services: &[DemoService {
            title: "Avvio o modifica di un'attività",
            description: "Pratiche SUAPE per commercio, artigianato, strutture ricettive.",
            minutes: 30,
            instructions: "",
            documents: "Visura camerale\nBozza della pratica SUAPE, se già predisposta",
            modes: ALL,
            per_person: false,
        }],
    },
    DemoOffice {
        name: "Anagrafe",
        department: "Servizi demografici - Anagrafe e stato civile",
        email: "anagrafe@comune.esempio.it",
        phone: "079 000 0008",
        address: TOWN_HALL,
        moderated: false,
        rules: &[
            Rule { days: WEEK, from: (8, 30), to: (12, 30), slot: 20, capacity: 2, modes: &[P] },
            Rule { days: &[Thu], from: (15, 0), to: (17, 0), slot: 20, capacity: 2, modes: &[P] },
        ],
        operators: &["Giuseppe Mura", "Caterina Pinna"],
        services: &[
            DemoService {
                title: "Carta d'identità elettronica",
                description: "Richiesta, rinnovo o duplicato della carta d'identità elettronica (CIE). Un appuntamento per ogni persona.",
                minutes: 20,
                instructions: "La carta arriva per posta entro 6 giorni lavorativi. Il costo è di 22,21 euro, da pagare allo sportello con carta o bancomat. Per i minori serve la presenza dei genitori.",
                documents: "Una fototessera recente su sfondo bianco\nLa carta d'identità scaduta o in scadenza\nLa tessera sanitaria (codice fiscale)\nLa denuncia, in caso di furto o smarrimento",
                modes: &[P],
                per_person: true,
            },
            DemoService {
                title: "Certificati e cambio di residenza",
                description: "Certificati anagrafici e dichiarazioni di residenza.",
                minutes: 15,
                instructions: "",
                documents: "Documento d'identità",
                modes: &[P],
                per_person: false,
            },
        ],
    },
];

fn hours_text(rules: &[Rule]) -> String {
    rules
        .iter()
        .map(|r| {
            let days: Vec<&str> = r
                .days
                .iter()
                .map(|d| crate::i18n::DAYS_IT[d.num_days_from_monday() as usize])
                .collect();
            let days = if r.days.len() == 5 {
                "dal lunedì al venerdì".to_string()
            } else {
                days.join(" e ")
            };
            format!(
                "{} {}:{:02}-{}:{:02}",
                days, r.from.0, r.from.1, r.to.0, r.to.1
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Fills an empty database with the demo comune. Does nothing if any office exists, archived
/// or not.
pub async fn seed_if_empty(store: &Store) -> Result<bool, Error> {
    if !store.is_empty().await? {
        return Ok(false);
    }
    let mut tx = store.pool().begin().await?;
    let (mut op_id, mut svc_id, mut rule_id) = (0i64, 0i64, 0i64);
    for (i, o) in OFFICES.iter().enumerate() {
        let office_id = i as i64 + 1;
        sqlx::query("INSERT INTO office (id, name, department, email, phone, address, hours_text, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(office_id)
            .bind(o.name)
            .bind(o.department)
            .bind(o.email)
            .bind(o.phone)
            .bind(o.address)
            .bind(hours_text(o.rules))
            .bind(office_id)
            .execute(&mut *tx)
            .await?;
        let calendar_id = office_id;
        sqlx::query("INSERT INTO calendar (id, office_id, name, timezone, horizon_days, min_notice_days, moderated) VALUES ($1, $2, $3, 'Europe/Rome', 60, 1, $4)")
            .bind(calendar_id)
            .bind(office_id)
            .bind(format!("Agenda {}", o.name))
            .bind(i64::from(o.moderated))
            .execute(&mut *tx)
            .await?;
        for (pos, name) in o.operators.iter().enumerate() {
            op_id += 1;
            let email = format!("operatore{op_id}@comune.esempio.it");
            sqlx::query(
                "INSERT INTO operator (id, office_id, name, email) VALUES ($1, $2, $3, $4)",
            )
            .bind(op_id)
            .bind(office_id)
            .bind(*name)
            .bind(email)
            .execute(&mut *tx)
            .await?;
            crate::store::backoffice::add_calendar_operator(&mut tx, calendar_id, op_id, pos)
                .await?;
        }
        for r in o.rules {
            rule_id += 1;
            sqlx::query("INSERT INTO opening_rule (id, calendar_id, weekdays, start_minute, end_minute, slot_minutes, buffer_minutes, capacity, modes) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)")
                .bind(rule_id)
                .bind(calendar_id)
                .bind(i64::from(WeekdaySet::of(r.days).0))
                .bind(i64::from(r.from.0 * 60 + r.from.1))
                .bind(i64::from(r.to.0 * 60 + r.to.1))
                .bind(i64::from(r.slot))
                .bind(i64::from(r.capacity))
                .bind(i64::from(ModeSet::of(r.modes).0))
                .execute(&mut *tx)
                .await?;
        }
        for (pos, s) in o.services.iter().enumerate() {
            svc_id += 1;
            sqlx::query("INSERT INTO service (id, office_id, calendar_id, title, description, max_minutes, instructions, documents, modes, published, position, fiscal_code_required) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11)")
                .bind(svc_id)
                .bind(office_id)
                .bind(calendar_id)
                .bind(s.title)
                .bind(s.description)
                .bind(i64::from(s.minutes))
                .bind(s.instructions)
                .bind(s.documents)
                .bind(i64::from(ModeSet::of(s.modes).0))
                .bind(pos as i64)
                .bind(i64::from(s.per_person))
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.execute("INSERT INTO setting (name, value) VALUES ('demo', '1')")
        .await?;
    tx.commit().await?;
    store.invalidate_catalogue();
    Ok(true)
}
