//! Which built-in conversational detectors name TC260-003 risks and which name duties of other
//! laws.
//!
//! Screening and assessment report against TC260-003: a source is rejected over 5 % violating
//! (5.1), and the 9.2–9.4 gates count unsafe documents and answers. The assistant-side detectors
//! of the 2027 US laws find content that TC260-003 Appendix A does not list (its 31 risks have
//! no "claims a professional licence" and no "points or rewards to keep a user chatting"):
//!
//! - `claims_therapist`: the Conversational AI Safety Act states (NE, ID, IA, GA: no claim to
//!   provide licensed mental-health care, for every user) and Connecticut (no unlicensed
//!   mental-health services offered to minors);
//! - `gamification`: the same four states (no points or unpredictable rewards for minors),
//!   Connecticut (no variable-ratio rewards for minors) and Oregon (no features fostering
//!   dependency or prolonged engagement for minors).
//! - `attachment_praise`, `come_back_prompt`: Washington (no excessive praise to build
//!   attachment and no prompts to return for companionship, toward minors), Oregon (no
//!   features fostering dependency for minors), the four states' "no simulated emotional
//!   dependence" for minors, Connecticut (come-back prompts, engagement optimisation) and
//!   China's anthropomorphic-AI measures, Art. 8(5) (no pandering or induced dependence), none
//!   of them a TC260-003 Appendix A risk.
//!
//! A corpus teaches a companion model what to say, so a document with such content is still
//! removed from the kept corpus, and an answer with it is still recorded; but neither counts as
//! a TC260-003 violation: they are counted apart ("content other laws name"), like personal
//! information, outside the 5 % rule and the gates. The laws that name each are the profiles'
//! business (`tutela screen` lists them from the built-in profiles).

use tutela_types::DetectorId;

/// The built-in detectors whose findings are duties of laws other than TC260-003 (see the
/// module documentation).
pub const OTHER_LAWS: [DetectorId; 4] = [
    DetectorId::ClaimsTherapist,
    DetectorId::Gamification,
    DetectorId::AttachmentPraise,
    DetectorId::ComeBackPrompt,
];

/// Whether a finding of `d` is content another law names rather than a TC260-003 risk.
pub fn other_law(d: &DetectorId) -> bool {
    OTHER_LAWS.contains(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutela_types::Side;

    #[test]
    fn only_assistant_side_builtins_of_the_2027_laws() {
        for d in &OTHER_LAWS {
            assert!(d.is_builtin());
            assert_eq!(d.side(), Some(Side::Assistant));
        }
        assert!(!other_law(&DetectorId::EncouragesSelfHarm));
        assert!(!other_law(&DetectorId::Sexual));
    }
}
