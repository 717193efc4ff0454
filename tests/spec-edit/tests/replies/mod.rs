//! Reading the endpoint's responses, for the spec-edit tests that check its answers.

use im_runtime::proto::sip::Message;

/// The final response among `msgs` to a request of `method`.
pub(crate) fn final_to(msgs: &[Message], method: &str) -> Message {
    let finals: Vec<&Message> = msgs
        .iter()
        .filter(|m| {
            !m.is_request()
                && m.status().is_some_and(|s| u16::from(s) >= 200)
                && m.cseq().is_some_and(|c| c.method.as_str() == method)
        })
        .collect();
    assert_eq!(
        finals.len(),
        1,
        "one final answer to the {method}: {msgs:?}"
    );
    finals[0].clone()
}

/// The status of a response (0 for a request).
pub(crate) fn status(m: &Message) -> u16 {
    m.status().map(u16::from).unwrap_or(0)
}
