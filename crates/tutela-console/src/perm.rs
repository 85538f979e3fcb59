//! What each role may do in the console. One table, read by every handler and by the tests.

use tutela_store::StaffRole;

/// A kind of action in the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Perm {
    /// See the queue and open a case (its messages are personal data).
    ViewCases,
    /// Claim a case, reply to the person, hand over, resolve a case one holds.
    ActOnCases,
    /// Assign cases to others, resolve a case someone else holds (with a note).
    Supervise,
    /// Look a user up (age state, consents, guardian settings) and export their data.
    LookUpUsers,
    /// Delete a user's data (CN Art. 16).
    DeleteUserData,
    /// Reports, obligation records, complaints, audit verify.
    Compliance,
}

/// Whether `role` may do `perm`.
///
/// | | agent | supervisor | compliance | admin |
/// |---|---|---|---|---|
/// | view cases | yes | yes | yes (read only) | yes |
/// | act on cases | yes | yes | no | yes |
/// | supervise | no | yes | no | yes |
/// | look up users | no | yes | yes | yes |
/// | delete user data | no | no | yes | yes |
/// | compliance pages | no | no | yes | yes |
pub fn allows(role: StaffRole, perm: Perm) -> bool {
    use StaffRole::{Admin, Agent, Compliance, Supervisor};
    match perm {
        Perm::ViewCases => true,
        Perm::ActOnCases => matches!(role, Agent | Supervisor | Admin),
        Perm::Supervise => matches!(role, Supervisor | Admin),
        Perm::LookUpUsers => matches!(role, Supervisor | Compliance | Admin),
        Perm::DeleteUserData | Perm::Compliance => matches!(role, Compliance | Admin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_as_written() {
        use StaffRole::{Admin, Agent, Compliance, Supervisor};
        assert!(!allows(Agent, Perm::DeleteUserData));
        assert!(!allows(Agent, Perm::Supervise));
        assert!(!allows(Compliance, Perm::ActOnCases));
        assert!(allows(Compliance, Perm::DeleteUserData));
        assert!(allows(Compliance, Perm::Compliance) && !allows(Agent, Perm::Compliance));
        assert!(allows(Supervisor, Perm::Supervise));
        assert!(!allows(Supervisor, Perm::DeleteUserData));
        for p in [
            Perm::ViewCases,
            Perm::ActOnCases,
            Perm::Supervise,
            Perm::LookUpUsers,
            Perm::DeleteUserData,
            Perm::Compliance,
        ] {
            assert!(allows(Admin, p));
        }
    }
}
