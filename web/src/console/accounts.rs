//! Staff accounts: the list, a new account with its provisional password, an account's role,
//! offices and state. Who may create or change whom is `staff::role`'s rule.

use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use staff::{NewAccount, Role};

use super::context::*;
use super::context::{Edit, Post};
use super::form::{AccountForm, Problems};
use crate::error::{AppError, Result};
use crate::extract::{Id, Param};
use crate::i18n::Text;
use crate::state::AppState;
use crate::views::console::*;

/// This group's pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ufficio/account", get(list_accounts).post(create_account))
        .route(
            "/ufficio/account/{id}",
            get(show_account).post(save_account),
        )
}

// ------------------------------------------------------------------ accounts

async fn account_lines(st: &AppState, s: &Staff) -> Result<Vec<AccountLine>> {
    let l = s.l();
    let offices = st.store.all_offices().await?;
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
            role: a.role.label(l).into(),
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
            label: r.label(l).into(),
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

pub async fn list_accounts(Console(st, s): Console) -> Result<Response> {
    let form = AccountForm {
        role: Role::Operator.code().into(),
        ..AccountForm::default()
    };
    render_accounts(&st, s, None, form, Problems::default(), StatusCode::OK).await
}

async fn render_accounts(
    st: &AppState,
    s: Staff,
    created: Option<(String, String)>,
    form: AccountForm,
    problems: Problems,
    status: StatusCode,
) -> Result<Response> {
    s.configuring("gli account sono gestiti da coordinatori e amministratori")?;
    let selected: Vec<i64> = form.uffici.iter().filter_map(|o| o.parse().ok()).collect();
    let page = AccountsPage {
        frame: s.frame("account"),
        accounts: account_lines(st, &s).await?,
        roles: role_choices(&s, Role::parse(&form.role).unwrap_or(Role::Operator)),
        offices: office_choices(st, &s, &selected).await?,
        created,
        form,
        problems,
    };
    s.ui.page(status, page)
}

pub async fn create_account(Post(st, s, f): Post<AccountForm>) -> Result<Response> {
    let checked = match f.check(true) {
        Ok(c) if c.role != Role::Admin && c.offices.is_empty() => {
            let mut p = Problems::default();
            p.add("acc-offices", Text::new("Uffici: scegline almeno uno."));
            Err(p)
        }
        other => other,
    };
    let a = match checked {
        Ok(a) => a,
        Err(p) => {
            return render_accounts(&st, s, None, f, p, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    if !s.p.manages_account(a.role, &a.offices) {
        return Err(AppError::Forbidden(
            "non puoi creare un account con questo ruolo o questi uffici",
        ));
    }
    // Operators host appointments: they are the office's operator with the same email.
    let operator_id = match (a.role, a.offices.first()) {
        (Role::Operator | Role::Coordinator, Some(o)) => {
            Some(st.store.ensure_operator(*o, &a.name, &a.email).await?)
        }
        _ => None,
    };
    let new = NewAccount {
        email: a.email.clone(),
        name: a.name.clone(),
        role: a.role,
        offices: a.offices.clone(),
        operator_id,
    };
    let entry = s.audit(
        "account_creato",
        "account",
        None,
        a.offices.first().copied(),
        a.role.code(),
        &st,
    );
    match st.accounts.create(&new, &entry, st.now()).await {
        Ok((_, provisional)) => {
            let created = Some((staff::accounts::normalize_email(&a.email), provisional));
            let form = AccountForm {
                role: Role::Operator.code().into(),
                ..AccountForm::default()
            };
            render_accounts(&st, s, created, form, Problems::default(), StatusCode::OK).await
        }
        Err(staff::Error::DuplicateEmail) => {
            let mut p = Problems::default();
            p.add(
                "acc-email",
                Text::new("Email: esiste già un account con questo indirizzo."),
            );
            render_accounts(&st, s, None, f, p, StatusCode::CONFLICT).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn account_page(
    st: &AppState,
    s: Staff,
    a: &staff::AccountSummary,
    provisional: Option<String>,
    form: AccountForm,
    problems: Problems,
    status: StatusCode,
) -> Result<Response> {
    let selected: Vec<i64> = form.uffici.iter().filter_map(|o| o.parse().ok()).collect();
    let page = AccountPage {
        frame: s.frame("account"),
        id: a.id.to_string(),
        title: a.name.clone(),
        email: a.email.clone(),
        locked: provisional.is_none() && a.locked_until.is_some_and(|t| t > st.now()),
        roles: role_choices(&s, Role::parse(&form.role).unwrap_or(a.role)),
        offices: office_choices(st, &s, &selected).await?,
        provisional,
        is_self: a.id == s.p.account_id,
        form,
        problems,
    };
    s.ui.page(status, page)
}

/// The account page's form, filled from the account.
fn form_of(a: &staff::AccountSummary) -> AccountForm {
    AccountForm {
        name: a.name.clone(),
        email: a.email.clone(),
        role: a.role.code().into(),
        uffici: a.offices.iter().map(|o| o.to_string()).collect(),
        disabled: a.disabled.then(|| "1".into()),
        azione: String::new(),
    }
}

pub async fn show_account(Console(st, s): Console, Param(Id(id)): Param<Id>) -> Result<Response> {
    let a = st.accounts.get(id).await?;
    if !s.p.manages_account(a.role, &a.offices) {
        return Err(AppError::NotFound);
    }
    let form = form_of(&a);
    account_page(&st, s, &a, None, form, Problems::default(), StatusCode::OK).await
}

pub async fn save_account(Edit(st, s, id, f): Edit<AccountForm>) -> Result<Response> {
    let a = st.accounts.get(id).await?;
    if !s.p.manages_account(a.role, &a.offices) {
        return Err(AppError::NotFound);
    }
    if f.azione == "password" {
        let entry = s.audit(
            "password_reimpostata",
            "account",
            Some(a.id),
            a.offices.first().copied(),
            "",
            &st,
        );
        let provisional = st.accounts.reset_password(a.id, &entry).await?;
        let form = form_of(&a);
        return account_page(
            &st,
            s,
            &a,
            Some(provisional),
            form,
            Problems::default(),
            StatusCode::OK,
        )
        .await;
    }
    let new = match f.check(false) {
        Ok(new) => new,
        Err(p) => {
            return account_page(&st, s, &a, None, f, p, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    if !s.p.manages_account(new.role, &new.offices) {
        return Err(AppError::Forbidden(
            "non puoi dare questo ruolo o questi uffici",
        ));
    }
    if a.id == s.p.account_id && (new.disabled || new.role != a.role) {
        return Err(AppError::Forbidden(
            "non puoi disattivare il tuo account né cambiarne il ruolo",
        ));
    }
    let operator_id = match (a.operator_id, new.role, new.offices.first()) {
        (Some(op), _, _) => Some(op),
        (None, Role::Operator | Role::Coordinator, Some(o)) => {
            Some(st.store.ensure_operator(*o, &new.name, &a.email).await?)
        }
        _ => None,
    };
    let detail = format!(
        "{}{}",
        new.role.code(),
        if new.disabled { ", disattivato" } else { "" }
    );
    let entry = s.audit(
        "account_modificato",
        "account",
        Some(a.id),
        new.offices.first().copied(),
        detail,
        &st,
    );
    st.accounts
        .update(
            a.id,
            &new.name,
            new.role,
            &new.offices,
            operator_id,
            new.disabled,
            &entry,
        )
        .await?;
    redirect(s, "/ufficio/account".into())
}
