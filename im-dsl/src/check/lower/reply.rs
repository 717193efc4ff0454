//! Lowering of what a rule answers: `respond` (status, reason, headers, Warning, the SDP
//! answer and its `else`), `report failure`, a leg's `outcome` and what its `deliver` asks.

use super::*;

impl Lowerer<'_> {
    /// `outcome …`: what one leg's machine decided about its copy, so only an invitee-leg
    /// procedure records one; a failed outcome's status is a failure status (400–699: an
    /// MSRP code, RFC 4975 §10, or the SIP status that ended the leg). In a `copy
    /// unroutable` / `copy expired` handler (any procedure) it is the status a copy that was
    /// not sent fails with: `outcome failed STATUS`, the status written (no event carries one).
    pub(super) fn outcome(
        &mut self,
        o: Option<Option<(u16, Span)>>,
        span: Span,
        cx: &ProcCx,
    ) -> Option<model::Action> {
        if cx.copy_unsent && !matches!(o, Some(Some(_))) {
            let what = if o.is_none() {
                "a copy that was not sent was not delivered"
            } else {
                "no response carries a status here"
            };
            self.diags.push(
                Diagnostic::new(
                    Code::BadArgument,
                    "a copy that was not sent fails with the status the rule gives",
                    span,
                    what,
                )
                .help("write the status, e.g. `outcome failed 480` (RFC 3261 §16.5: no registration) or `outcome failed 503` (§8.1.3.1: no route)"),
            );
            return None;
        }
        if !cx.leg && !cx.copy_unsent {
            self.diags.push(
                Diagnostic::new(
                    Code::BadArgument,
                    "`outcome` outside an invitee-leg procedure",
                    span,
                    "only a leg's machine records its copy's outcome",
                )
                .help(
                    "write it in the procedure that runs each leg (responses, no initial request), where the session reads the counts as `legs.*`, or in an `on copy unroutable` / `on copy expired` handler",
                ),
            );
            return None;
        }
        match o {
            None => Some(model::Action::Outcome(None)),
            Some(None) => Some(model::Action::Outcome(Some(None))),
            Some(Some((s, at))) if (400..=699).contains(&s) => {
                let _ = at;
                Some(model::Action::Outcome(Some(Some(s))))
            }
            Some(Some((s, at))) => {
                self.diags.push(
                    Diagnostic::new(
                        Code::BadArgument,
                        format!("{s} is not a failure status"),
                        at,
                        "a failed outcome needs a 4xx–6xx status",
                    )
                    .help("e.g. `outcome failed 408`, or `outcome failed` for the status the event carries"),
                );
                None
            }
        }
    }

    /// `report failure STATUS "REASON"`: both are required, and the status is an MSRP
    /// failure code (RFC 4975 §10: 4xx or 5xx), so that what the originator is told is the
    /// spec's decision, not a runtime default.
    pub(super) fn report_failure(
        &mut self,
        status: Option<(u16, Span)>,
        reason: Option<&ast::StrLit>,
        span: Span,
    ) -> Option<(u16, String)> {
        let status = match status {
            None => {
                self.diags.push(
                    Diagnostic::new(
                        Code::NoStatus,
                        "`report failure` without a status code",
                        span,
                        "which status?",
                    )
                    .help("give the MSRP status and comment, e.g. `report failure 408 \"Request Timeout\"`"),
                );
                None
            }
            Some((s, _)) if (400..=599).contains(&s) => Some(s),
            Some((s, sspan)) => {
                self.diags.push(
                    Diagnostic::new(
                        Code::BadArgument,
                        format!("status code {s} is not an MSRP failure"),
                        sspan,
                        "not a failure status",
                    )
                    .help("a failure REPORT carries a 4xx or 5xx MSRP status (RFC 4975 §10)"),
                );
                None
            }
        };
        // One diagnostic for a bare `report failure`: its help already asks for both.
        let reason = match reason {
            None if status.is_none() => None,
            Some(r) if !r.value.contains(['{', '}', '\r', '\n']) => Some(r.value.clone()),
            Some(r) => {
                self.diags.push(
                    Diagnostic::new(
                        Code::BadArgument,
                        "a REPORT comment is plain text",
                        r.span,
                        "braces or line breaks",
                    )
                    .help("write the comment without `{…}` or line breaks"),
                );
                None
            }
            None => {
                self.diags.push(
                    Diagnostic::new(
                        Code::NoStatus,
                        "`report failure` without a comment",
                        span,
                        "which comment?",
                    )
                    .help("give the comment after the status, e.g. `report failure 408 \"Request Timeout\"`"),
                );
                None
            }
        };
        Some((status?, reason?))
    }

    /// `deliver { success-report WORD }`: the word is one RFC 4975 §7.1.2 gives the header
    /// (`yes`, `no`), given at most once; absent is `no`.
    pub(super) fn deliver(&mut self, items: &[ast::DeliverItem]) -> Option<model::Action> {
        const WORDS: &[&str] = &["yes", "no"];
        let mut success_report = None;
        let mut ok = true;
        for ast::DeliverItem::SuccessReport(w, span) in items {
            if let Some((_, first)) = success_report {
                self.diags.push(
                    Diagnostic::new(
                        Code::Duplicate,
                        "`success-report` is given twice for this delivery",
                        *span,
                        "given again",
                    )
                    .note(first, "first given here")
                    .help("keep one `success-report`"),
                );
                ok = false;
                continue;
            }
            if !WORDS.contains(&w.as_str()) {
                self.diags.push(
                    Diagnostic::new(
                        Code::BadArgument,
                        format!("`{w}` is not a Success-Report value"),
                        *span,
                        "unknown Success-Report value",
                    )
                    .help(suggest(w, WORDS, "RFC 4975 §7.1.2 knows")),
                );
                ok = false;
                continue;
            }
            success_report = Some((w == "yes", *span));
        }
        ok.then_some(model::Action::Deliver {
            success_report: success_report.is_some_and(|(y, _)| y),
        })
    }

    /// The status of an `sdp { … else STATUS }`: required, and a final non-2xx (3xx–6xx), since
    /// it replaces an answer that could not be built.
    pub(super) fn sdp_else(&mut self, status: Option<(u16, Span)>, span: Span) -> Option<u16> {
        match status {
            None => {
                self.diags.push(
                    Diagnostic::new(
                        Code::NoStatus,
                        "`else` without a status code",
                        span,
                        "which status?",
                    )
                    .help("e.g. `else 488 \"Not Acceptable Here\"`"),
                );
                None
            }
            Some((s, _)) if (300..=699).contains(&s) => Some(s),
            Some((s, sspan)) => {
                self.diags.push(
                    Diagnostic::new(
                        Code::BadArgument,
                        format!("status code {s} cannot replace an SDP answer"),
                        sspan,
                        "not a final refusal",
                    )
                    .help("an offer that cannot be answered is refused with a 3xx–6xx status (usually 488, RFC 3261 §13.3.1.3)"),
                );
                None
            }
        }
    }

    pub(super) fn respond(&mut self, r: &ast::Respond, span: Span) -> Option<model::Respond> {
        let status = match r.status {
            None => {
                self.diags.push(
                    Diagnostic::new(
                        Code::NoStatus,
                        "`respond` without a status code",
                        span,
                        "which status?",
                    )
                    .help("give the status, e.g. `respond 488 \"Not Acceptable Here\"`; the reason phrase may be left out"),
                );
                None
            }
            Some((s, _)) if (100..=699).contains(&s) => Some(s),
            Some((s, sspan)) => {
                self.diags.push(
                    Diagnostic::new(
                        Code::BadArgument,
                        format!("status code {s} is out of range"),
                        sspan,
                        "not a SIP status code",
                    )
                    .help("SIP status codes are 100 to 699"),
                );
                None
            }
        };
        let mut headers = Vec::new();
        let mut contact_focus = false;
        let mut contact_params = Vec::new();
        let mut warning = None;
        let mut warning_code = crate::check::warning::DEFAULT_WARNING_CODE;
        let mut sdp = None;
        let mut ok = true;
        for item in &r.items {
            match item {
                ast::RespondItem::Header(n, v) => {
                    headers.push((n.name.clone(), plain_braces(&v.value)))
                }
                ast::RespondItem::ContactFocus(_, params) => {
                    contact_focus = true;
                    for p in params {
                        // A Contact header parameter (RFC 3261 §25.1 generic-param; feature
                        // tags of RFC 3840 start with `+`): a token, optionally `=value`.
                        let token = |s: &str| {
                            !s.is_empty()
                                && s.chars().all(|c| {
                                    c.is_ascii_alphanumeric() || "-.!%*_+`'~\"".contains(c)
                                })
                        };
                        let valid = match p.value.split_once('=') {
                            Some((n, v)) => {
                                token(n) && !v.is_empty() && !v.contains([';', ' ', '<', '>', ','])
                            }
                            None => token(&p.value),
                        };
                        if valid {
                            contact_params.push(p.value.clone());
                        } else {
                            self.diags.push(
                                Diagnostic::new(
                                    Code::BadArgument,
                                    format!("{:?} is not a Contact parameter", p.value),
                                    p.span,
                                    "not name or name=value",
                                )
                                .help("give each parameter alone, without `;`, e.g. `contact focus \"+g.oma.sip-im\"` (RFC 3840 feature tag)"),
                            );
                            ok = false;
                        }
                    }
                }
                ast::RespondItem::Warning(code, s) => {
                    match crate::check::warning::warning_code(self.diags, *code) {
                        Some(c) => warning_code = c,
                        None => ok = false,
                    }
                    let mut ecx = ExprCx::new(&self.conditions, self.diags);
                    match lower_text(&mut ecx, self.sources, s) {
                        Some(t) => warning = Some(t),
                        None => ok = false,
                    }
                }
                ast::RespondItem::Sdp(items, sdp_span) => {
                    let mut out = Vec::new();
                    if !items
                        .iter()
                        .any(|i| matches!(i.kind, ast::SdpItemKind::Else(..)))
                    {
                        // What happens when the offer cannot be answered is the spec's
                        // decision, not a runtime default.
                        self.diags.push(
                            Diagnostic::new(
                                Code::NoStatus,
                                "an `sdp` answer without `else`",
                                *sdp_span,
                                "what if the offer cannot be answered?",
                            )
                            .help("add the response sent instead, e.g. `else 488 \"Not Acceptable Here\"`; the Warning says why"),
                        );
                        ok = false;
                    }
                    for i in items {
                        out.push(match &i.kind {
                            ast::SdpItemKind::Else(status, reason) => {
                                match self.sdp_else(*status, i.span) {
                                    Some(s) => model::SdpItem::Else(
                                        s,
                                        match reason {
                                            Some(r) => plain_braces(&r.value),
                                            None => standard_reason(s).to_string(),
                                        },
                                    ),
                                    None => {
                                        ok = false;
                                        continue;
                                    }
                                }
                            }
                            ast::SdpItemKind::PathOwn => model::SdpItem::OwnPath,
                            ast::SdpItemKind::MediaFromOffer => model::SdpItem::MediaFromOffer,
                            ast::SdpItemKind::AcceptTypesIntersect => {
                                model::SdpItem::AcceptTypesIntersect
                            }
                            ast::SdpItemKind::AcceptWrappedTypesIntersect => {
                                model::SdpItem::AcceptWrappedTypesIntersect
                            }
                            ast::SdpItemKind::MaxSizeOwn => model::SdpItem::OwnMaxSize,
                            ast::SdpItemKind::DirectionMirror => model::SdpItem::MirrorDirection,
                            ast::SdpItemKind::SetupComplement => model::SdpItem::ComplementSetup,
                            ast::SdpItemKind::Echo(n) => model::SdpItem::Echo(n.clone()),
                            ast::SdpItemKind::Attribute(name, value, when) => {
                                let when = match when {
                                    Some(w) => {
                                        let mut ecx = ExprCx::new(&self.conditions, self.diags);
                                        let x =
                                            ecx.lower_as(w, Type::Bool, "an attribute condition");
                                        ok &= x.is_some();
                                        x
                                    }
                                    None => None,
                                };
                                model::SdpItem::Attribute {
                                    name: name.clone(),
                                    value: value.as_ref().map(|v| plain_braces(&v.value)),
                                    when,
                                }
                            }
                        });
                    }
                    sdp = Some(out);
                }
            }
        }
        let status = status?;
        if !ok {
            return None;
        }
        Some(model::Respond {
            status,
            reason: match &r.reason {
                Some(s) => plain_braces(&s.value),
                None => standard_reason(status).to_string(),
            },
            headers,
            contact_focus,
            contact_params,
            warning,
            warning_code,
            sdp,
        })
    }
}
