//! Staff accounts: the list, a new account with its provisional password, an account's role,
//! offices and state. Who may create or change whom is `staff::role`'s rule.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use staff::{NewAccount, Role};

use super::context::*;
use crate::error::{invalid, AppError, Result};
use crate::extract::{CsrfForm, Id, Param};
use crate::state::AppState;
use crate::views::console::*;

// ------------------------------------------------------------------ accounts

async fn account_lines(st: &AppState, s: &Staff) -> Result<Vec<AccountLine>> {
    let l = s.l();
    let offices = st.store.offices().await?;
    Ok(st
        .accounts
        .list()
        .await?
        .into_iter()
        .filter(|a| s.p.manages_account(a.role, &a.offices))
        .map(|a| AccountLine {
            id: a.id.to_string(),
            name: a.name,
            email: a.email,
            role: if l.is_en() {
                a.role.label_en()
            } else {
                a.role.label_it()
            }
            .into(),
            offices: a
                .offices
                .iter()
                .filter_map(|id| offices.iter().find(|o| o.id == *id))
                .map(|o| o.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
            disabled: a.disabled,
        })
        .collect())
}

fn role_choices(s: &Staff, current: Role) -> Vec<Choice> {
    let l = s.l();
    [Role::Operator, Role::Coordinator, Role::Admin]
        .into_iter()
        .filter(|r| s.p.manages_account(*r, &s.p.offices) || s.p.is_admin())
        .map(|r| Choice {
            value: r.code().into(),
            label: if l.is_en() {
                r.label_en()
            } else {
                r.label_it()
            }
            .into(),
            checked: r == current,
        })
        .collect()
}

async fn office_choices(st: &AppState, s: &Staff, selected: &[i64]) -> Result<Vec<Choice>> {
    Ok(s.offices(st)
        .await?
        .into_iter()
        .filter(|o| s.p.configures_office(o.id))
        .map(|o| Choice {
            value: o.id.to_string(),
            label: o.name,
            checked: selected.contains(&o.id),
        })
        .collect())
}

pub async fn list_accounts(State(st): State<AppState>, s: Staff) -> Result<Response> {
    if !s.p.configures_anything() {
        return Err(AppError::Forbidden(
            "gli account sono gestiti da coordinatori e amministratori",
        ));
    }
    render_accounts(&st, s, None).await
}

async fn render_accounts(
    st: &AppState,
    s: Staff,
    created: Option<(String, String)>,
) -> Result<Response> {
    let page = AccountsPage {
        l: s.l(),
        csrf: s.ui.csrf.clone(),
        nav: s.nav("account"),
        accounts: account_lines(st, &s).await?,
        roles: role_choices(&s, Role::Operator),
        offices: office_choices(st, &s, &[]).await?,
        created,
    };
    s.ui.page(StatusCode::OK, page)
}

pub async fn create_account(
    State(st): State<AppState>,
    s: Staff,
    CsrfForm(f): CsrfForm<Fields>,
) -> Result<Response> {
    let role = role_of(f.get("role"))?;
    let offices = f.ids("uffici")?;
    if !s.p.manages_account(role, &offices) {
        return Err(AppError::Forbidden(
            "non puoi creare un account con questo ruolo o questi uffici",
        ));
    }
    if role != Role::Admin && offices.is_empty() {
        return Err(invalid(
            "scegli almeno un ufficio",
            "choose at least one office",
        ));
    }
    let email = f.required("email", 254)?;
    let name = f.required("name", 200)?;
    // Operators host appointments: they are the office's operator with the same email.
    let operator_id = match (role, offices.first()) {
        (Role::Operator | Role::Coordinator, Some(o)) => {
            Some(st.store.ensure_operator(*o, &name, &email).await?)
        }
        _ => None,
    };
    let new = NewAccount {
        email: email.clone(),
        name,
        role,
        offices: offices.clone(),
        operator_id,
    };
    match st.accounts.create(&new, st.now()).await {
        Ok((id, provisional)) => {
            audit(
                &st,
                s.audit(
                    "account_creato",
                    "account",
                    id,
                    offices.first().copied(),
                    role.code(),
                    &st,
                ),
            )
            .await?;
            render_accounts(
                &st,
                s,
                Some((staff::accounts::normalize_email(&email), provisional)),
            )
            .await
        }
        Err(staff::Error::DuplicateEmail) => Err(invalid(
            "esiste già un account con questa email",
            "an account with this email already exists",
        )),
        Err(e) => Err(e.into()),
    }
}

async fn account_page(
    st: &AppState,
    s: Staff,
    a: &staff::AccountSummary,
    provisional: Option<String>,
) -> Result<Response> {
    let page = AccountPage {
        l: s.l(),
        csrf: s.ui.csrf.clone(),
        nav: s.nav("account"),
        id: a.id.to_string(),
        name: a.name.clone(),
        email: a.email.clone(),
        disabled: a.disabled,
        locked: provisional.is_none() && a.locked_until.is_some_and(|t| t > st.now()),
        roles: role_choices(&s, a.role),
        offices: office_choices(st, &s, &a.offices).await?,
        provisional,
        is_self: a.id == s.p.account_id,
    };
    s.ui.page(StatusCode::OK, page)
}

pub async fn show_account(
    State(st): State<AppState>,
    s: Staff,
    Param(Id(id)): Param<Id>,
) -> Result<Response> {
    let a = st.accounts.get(id).await?;
    if !s.p.manages_account(a.role, &a.offices) {
        return Err(AppError::NotFound);
    }
    account_page(&st, s, &a, None).await
}

pub async fn save_account(
    State(st): State<AppState>,
    s: Staff,
    Param(Id(id)): Param<Id>,
    CsrfForm(f): CsrfForm<Fields>,
) -> Result<Response> {
    let a = st.accounts.get(id).await?;
    if !s.p.manages_account(a.role, &a.offices) {
        return Err(AppError::NotFound);
    }
    if f.get("azione") == "password" {
        let provisional = st.accounts.reset_password(a.id).await?;
        audit(
            &st,
            s.audit(
                "password_reimpostata",
                "account",
                a.id,
                a.offices.first().copied(),
                "",
                &st,
            ),
        )
        .await?;
        return account_page(&st, s, &a, Some(provisional)).await;
    }
    let role = role_of(f.get("role"))?;
    let offices = f.ids("uffici")?;
    if !s.p.manages_account(role, &offices) {
        return Err(AppError::Forbidden(
            "non puoi dare questo ruolo o questi uffici",
        ));
    }
    let disabled = f.flag("disabled");
    if a.id == s.p.account_id && (disabled || role != a.role) {
        return Err(AppError::Forbidden(
            "non puoi disattivare il tuo account né cambiarne il ruolo",
        ));
    }
    let name = f.required("name", 200)?;
    let operator_id = match (a.operator_id, role, offices.first()) {
        (Some(op), _, _) => Some(op),
        (None, Role::Operator | Role::Coordinator, Some(o)) => {
            Some(st.store.ensure_operator(*o, &name, &a.email).await?)
        }
        _ => None,
    };
    st.accounts
        .update(a.id, &name, role, &offices, operator_id, disabled)
        .await?;
    let detail = format!(
        "{}{}",
        role.code(),
        if disabled { ", disattivato" } else { "" }
    );
    audit(
        &st,
        s.audit(
            "account_modificato",
            "account",
            a.id,
            offices.first().copied(),
            detail,
            &st,
        ),
    )
    .await?;
    redirect(s, "/ufficio/account".into())
}
