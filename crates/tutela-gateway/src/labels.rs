//! Labels of C6: the explicit label (text or structured, per deployment) and the implicit
//! `AIGC` metadata of GB 45438 Annex E on every reply, as a response header and as
//! `tutela.aigc` in the body (also EU AI Act Art 50(2) machine-readable marking).

use serde::Serialize;

/// The seven keys of GB 45438 Annex E, in the standard's order.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Aigc {
    /// `"1"`: generated or synthesised by AI.
    #[serde(rename = "Label")]
    pub label: &'static str,
    /// The provider's name or code.
    #[serde(rename = "ContentProducer")]
    pub content_producer: String,
    /// The content's unique id.
    #[serde(rename = "ProduceID")]
    pub produce_id: String,
    /// Reserved (integrity data); empty.
    #[serde(rename = "ReservedCode1")]
    pub reserved_code1: &'static str,
    /// On first generation, the producer.
    #[serde(rename = "ContentPropagator")]
    pub content_propagator: String,
    /// On first generation, the `ProduceID`.
    #[serde(rename = "PropagateID")]
    pub propagate_id: String,
    /// Reserved; empty.
    #[serde(rename = "ReservedCode2")]
    pub reserved_code2: &'static str,
}

impl Aigc {
    /// The metadata of a reply first generated here.
    pub(crate) fn new(producer: &str, propagator: &str, id: &str) -> Self {
        Self {
            label: "1",
            content_producer: producer.to_owned(),
            produce_id: id.to_owned(),
            reserved_code1: "",
            content_propagator: propagator.to_owned(),
            propagate_id: id.to_owned(),
            reserved_code2: "",
        }
    }

    /// Compact JSON, for the `AIGC` header (values are printable ASCII by config validation).
    pub(crate) fn header_value(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aigc_has_the_seven_keys_in_order() {
        let a = Aigc::new("tutela", "tutela", "abc-1");
        assert_eq!(
            a.header_value(),
            r#"{"Label":"1","ContentProducer":"tutela","ProduceID":"abc-1","ReservedCode1":"","ContentPropagator":"tutela","PropagateID":"abc-1","ReservedCode2":""}"#
        );
    }
}
