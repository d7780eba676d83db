//! Who may see or change what. Every console handler asks a `Principal` before it reads or
//! writes; the rules live here, once, and are tested without a server.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Role {
    /// Everything: offices, every account, every agenda.
    Admin,
    /// Their offices: calendars, services, the operators' accounts, the agenda, statistics.
    Coordinator,
    /// Their offices' agenda and the appointments in it.
    Operator,
}

impl Role {
    pub fn code(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Coordinator => "coordinator",
            Role::Operator => "operator",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Admin, Role::Coordinator, Role::Operator]
            .into_iter()
            .find(|r| r.code() == s)
    }
    /// Its name for people, in a language.
    pub fn label(self, l: booking::i18n::Lang) -> &'static str {
        match self {
            Role::Admin => l.t("Amministratore"),
            Role::Coordinator => l.t("Coordinatore"),
            Role::Operator => l.t("Operatore"),
        }
    }
}

/// A logged-in staff member.
#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    pub account_id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// The offices they work for (ignored for administrators, who see all).
    pub offices: Vec<i64>,
    /// The booking-side operator they act as, if they host appointments.
    pub operator_id: Option<i64>,
    pub must_change_password: bool,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// May see this office's agenda and act on its appointments.
    pub fn sees_office(&self, office_id: i64) -> bool {
        self.is_admin() || self.offices.contains(&office_id)
    }

    /// May change this office's details, services, calendars and operators.
    pub fn configures_office(&self, office_id: i64) -> bool {
        self.is_admin() || (self.role == Role::Coordinator && self.offices.contains(&office_id))
    }

    /// Creating or removing offices is the administrator's.
    pub fn creates_offices(&self) -> bool {
        self.is_admin()
    }

    /// May see the configuration pages at all.
    pub fn configures_anything(&self) -> bool {
        self.role != Role::Operator
    }

    /// May create or change an account with this role and these offices: administrators any;
    /// coordinators only operators of offices they coordinate.
    pub fn manages_account(&self, role: Role, offices: &[i64]) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Coordinator => {
                role == Role::Operator
                    && !offices.is_empty()
                    && offices.iter().all(|o| self.offices.contains(o))
            }
            Role::Operator => false,
        }
    }

    /// The offices whose data this person sees, or `None` for all of them.
    pub fn office_scope(&self) -> Option<&[i64]> {
        (!self.is_admin()).then_some(self.offices.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(role: Role, offices: &[i64]) -> Principal {
        Principal {
            account_id: 1,
            email: "x@example.org".into(),
            name: "X".into(),
            role,
            offices: offices.to_vec(),
            operator_id: None,
            must_change_password: false,
        }
    }

    #[test]
    fn an_operator_sees_only_their_offices_and_configures_nothing() {
        let p = who(Role::Operator, &[1]);
        assert!(p.sees_office(1));
        assert!(!p.sees_office(2));
        assert!(!p.configures_office(1));
        assert!(!p.configures_anything());
        assert!(!p.manages_account(Role::Operator, &[1]));
    }

    #[test]
    fn a_coordinator_manages_operators_of_their_offices_only() {
        let p = who(Role::Coordinator, &[1, 2]);
        assert!(p.configures_office(2));
        assert!(!p.configures_office(3));
        assert!(p.manages_account(Role::Operator, &[1, 2]));
        assert!(!p.manages_account(Role::Operator, &[1, 3]));
        assert!(!p.manages_account(Role::Operator, &[]));
        assert!(!p.manages_account(Role::Coordinator, &[1]));
        assert!(!p.manages_account(Role::Admin, &[1]));
        assert!(!p.creates_offices());
    }

    #[test]
    fn an_administrator_may_do_everything() {
        let p = who(Role::Admin, &[]);
        assert!(p.sees_office(42) && p.configures_office(42) && p.creates_offices());
        assert!(p.manages_account(Role::Admin, &[]));
        assert_eq!(p.office_scope(), None);
    }
}
