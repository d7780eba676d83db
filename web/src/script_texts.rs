//! The texts the pages' scripts write (`room.js`, `check.js`), from the page language's
//! catalogue: the page carries them as a JSON block (`<script type="application/json">`), so
//! the scripts hold no language of their own. `{nome}`, `{w}` and `{h}` are filled in by the
//! script.

use serde_json::{json, Value};

use crate::i18n::Lang;

/// JSON for a `<script type="application/json">` block: `<` is escaped, so no text can end it.
fn block(v: Value) -> String {
    v.to_string().replace('<', "\\u003c")
}

/// The room's texts (`room.js`).
pub fn room(l: Lang) -> String {
    block(json!({
        "locale": l.code(),
        "units": [l.t("giorno|giorni"), l.t("ora|ore"), l.t("minuto|minuti"), l.t("secondo|secondi")],
        "and": l.t(" e "),
        "waiting": {
            "operator": l.t("Sei nella stanza. In attesa dell'operatore…"),
            "citizen": l.t("Sei nella stanza. In attesa del cittadino…"),
        },
        "someone": l.t("L'altra persona"),
        "someone_else": l.t("l'altra persona"),
        "joined": l.t("{nome} è entrato nella stanza: la videochiamata sta per iniziare."),
        "left": l.t("{nome} è uscita dalla stanza."),
        "lost": l.t("Connessione con {nome} persa, riconnessione in corso…"),
        "citizenWaiting": l.t("{nome} è in attesa nella stanza."),
        "replaced": l.t("Hai aperto la stanza in un'altra scheda o finestra: continua da lì."),
        "reconnecting": l.t("Connessione persa, nuovo tentativo in corso…"),
        "peerBlocked": l.t("{nome} non riesce a collegarsi alla videochiamata (la sua rete potrebbe bloccarla): sta riprovando."),
        // What a call that cannot connect may be blocked by, and what to try, by role.
        "blocked": {
            "citizen": l.t("La videochiamata non riesce a collegarsi: la rete che stai usando potrebbe bloccarla. Nuovo tentativo in corso; se non basta, prova un'altra rete (ad esempio i dati del telefono invece del Wi-Fi) o contatta l'ufficio."),
            "operator": l.t("La videochiamata non riesce a collegarsi: la rete dell'ufficio potrebbe bloccarla. Nuovo tentativo in corso; se non basta, segnalalo a chi gestisce la rete o i sistemi informatici del Comune."),
        },
        "ended": l.t("L'appuntamento è terminato."),
        "noCamera": l.t("Non è stato possibile usare la fotocamera (permesso negato o fotocamera assente): entrerai solo con l'audio."),
        "noMedia": l.t("Non è stato possibile usare né la fotocamera né il microfono: controlla i permessi del browser. Potrai comunque vedere e sentire l'altra persona."),
        "mute": l.t("Disattiva microfono"),
        "unmute": l.t("Attiva microfono"),
        "cameraOff": l.t("Spegni fotocamera"),
        "cameraOn": l.t("Accendi fotocamera"),
        "share": l.t("Condividi schermo"),
        "stopShare": l.t("Interrompi condivisione"),
        "states": {
            "new": l.t("Collegamento…"),
            "connecting": l.t("Collegamento…"),
            "connected": l.t("Collegato"),
            "disconnected": l.t("Connessione instabile, riconnessione…"),
            "failed": l.t("Connessione non riuscita, nuovo tentativo…"),
            "closed": l.t("Chiamata terminata"),
        },
        "hungUp": l.t("Hai riagganciato. Puoi rientrare nella stanza finché è aperta."),
        "you": l.t("Tu"),
        "offline": l.t("Non collegato: il messaggio non è stato inviato, riprova tra poco."),
        // The refusals of the signaling socket the page shows, by their code.
        "errors": {
            "bad_chat": l.t("Messaggio vuoto, troppo lungo (al massimo 1000 caratteri) o con caratteri non ammessi."),
            "chat_full": l.t("Troppi messaggi in questa chiamata."),
            "bad_name": l.t("Nome non valido."),
            "bad_token": l.t("Link della stanza non valido."),
            "wrong_room": l.t("Il link è di un'altra stanza."),
            "ended": l.t("L'appuntamento è terminato."),
            "cancelled": l.t("L'appuntamento è stato annullato."),
            "not_confirmed": l.t("L'appuntamento non è ancora confermato."),
        },
    }))
}

/// The camera and microphone test's texts (`check.js`).
pub fn check(l: Lang) -> String {
    block(json!({
        "inApp": l.t("Stai usando il browser interno di un'app (Facebook, Instagram, WhatsApp, …): non può fare videochiamate. Apri il collegamento nel browser del telefono (Chrome, Safari, Firefox o Edge)."),
        "old": l.t("Questo browser non può fare videochiamate. Usa Chrome, Safari, Firefox o Edge aggiornati."),
        "insecure": l.t("La pagina non è su una connessione sicura (https): la fotocamera non si può usare."),
        "cameraOk": l.t("Fotocamera: funziona ({w}×{h})."),
        "cameraNo": l.t("Fotocamera: non disponibile (assente o permesso negato). Potrai comunque partecipare solo con l'audio."),
        "micOk": l.t("Microfono: funziona. Parla: la barra si muove con la tua voce."),
        "micNo": l.t("Microfono: non disponibile (assente o permesso negato): controlla i permessi del browser."),
        "heard": l.t("Microfono: la tua voce si sente."),
        "denied": l.t("Il browser non ha consentito fotocamera e microfono. Consentili nelle impostazioni del browser per questo sito, poi riprova."),
        "ended": l.t("Prova terminata: fotocamera e microfono sono spenti."),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_cannot_end_its_block() {
        assert!(!block(json!({ "x": "</script><script>alert(1)</script>" })).contains('<'));
        let en = Lang::from_code("en").unwrap();
        let v: Value = serde_json::from_str(&room(en)).unwrap();
        assert_eq!(v["joined"], "{nome} has joined: the call is starting.");
        assert_eq!(v["units"][0], "day|days");
    }
}
