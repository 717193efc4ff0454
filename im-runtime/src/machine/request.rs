//! Facts about the request being handled that only some requests carry: whether its body
//! could be read, and the SUBSCRIBE a `request SUBSCRIBE` handler decides on.

/// Whether the request's body could be read (`body.*` in a spec): a multipart body
/// (RFC 2046, RFC 5621) or an SDP part (RFC 4566) the runtime cannot parse. What such a
/// request is answered is the spec's rule; the runtime answers 400 only when no rule did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BodyFacts {
    /// The body (or its SDP part) cannot be parsed: `parts`, `recipients` and `sdp` then
    /// hold only what was read before the fault.
    pub malformed: bool,
    /// Why, in words for a Warning (`malformed SDP: …`); empty when the body was read.
    pub error: String,
}

/// The SUBSCRIBE a `request SUBSCRIBE` handler is deciding on (`subscription.*` in a spec,
/// besides [`Facts::subscriber`](super::Facts::subscriber)); all false and empty for other
/// events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscriptionFacts {
    /// It came inside one of the session's INVITE dialogs (the originator's or an invitee
    /// leg's: dialog reuse, which RFC 5057 advises against) instead of to the focus URI in
    /// a dialog of its own (RFC 4579 §5).
    pub in_invite_dialog: bool,
    /// Granting it would pass a configured subscription limit (per subscriber or per
    /// session: `EndpointConfig::max_subscriptions_per_user` / `…_per_session`).
    pub over_limit: bool,
    /// Which limit, in words for a Warning (`too many subscriptions: at most 4 per user`);
    /// empty when none is passed.
    pub error: String,
    /// The user name Digest authentication established for the SUBSCRIBE (RFC 3261 §22);
    /// empty when it was not Digest-authenticated (authentication off, a trusted host sent
    /// it). For a refresh, the one of the SUBSCRIBE that created the subscription (a
    /// request inside its dialog is not challenged again). Whether that user may subscribe
    /// as the SUBSCRIBE's From is the spec's rule (ext-dr.12).
    pub authenticated_user: String,
    /// It came inside the dialog of one of the session's subscriptions: a refresh, or an
    /// unsubscribe when [`expires`](Self::expires) is 0 (RFC 6665 §4.2.1.2), which the
    /// spec decides as it decides a new one.
    pub refresh: bool,
    /// The interval it would be granted, in seconds: its Expires, at most
    /// `EndpointConfig::max_subscription_expires`; 0 for a fetch (RFC 6665 §4.4.3) or an
    /// unsubscribe.
    pub expires: u32,
}
