//! Property tests for the parser and the formatter.
//!
//! * Arbitrary trees covering every construct of `ast.rs` are printed by a "noisy printer"
//!   (random whitespace, optional braces, random comments between tokens, random interleaving
//!   of procedure items); the text must parse back to the same tree, and formatting it must keep
//!   the tree and every comment and be idempotent.
//! * The parser (and the formatter) never panic on arbitrary text, nor on byte-level mutations
//!   of the specs in `specs/`; mutants that still parse must format idempotently.

use im_dsl::ast::*;
use im_dsl::fmt::{format_source, same_ignoring_spans, scan_comments, without_spans};
use im_dsl::parse::parse_file;
use proptest::prelude::*;
use std::path::Path;

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "where",
    "when",
    "any",
    "all",
    "none",
    "true",
    "false",
    "contains",
    "rule",
    "otherwise",
    "first",
    "condition",
    "initial",
    "final",
];

fn sp() -> Span {
    Span::default()
}

fn id(name: String) -> Ident {
    Ident { name, span: sp() }
}

fn ident() -> impl Strategy<Value = Ident> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,6}"
        .prop_filter("not a keyword", |s| !KEYWORDS.contains(&s.as_str()))
        .prop_map(id)
}

fn clause() -> impl Strategy<Value = ClauseRef> {
    "[0-9]{1,2}(\\.[0-9]{1,2}){0,3}".prop_map(|id| ClauseRef { id, span: sp() })
}

/// String values as the parser produces them (escapes resolved, `\{` `\}` kept escaped).
fn str_value() -> impl Strategy<Value = String> {
    let chars = prop::sample::select(vec![
        'a', 'b', 'Z', '0', ' ', '/', '"', '\\', '\n', '\t', '{', '}', 'é', '€', '#', '(', ')',
    ]);
    prop::collection::vec(chars, 0..10).prop_map(|v| v.into_iter().collect())
}

fn strlit() -> impl Strategy<Value = StrLit> {
    str_value().prop_map(|value| StrLit { value, span: sp() })
}

fn expr_of(kind: ExprKind) -> Expr {
    Expr { kind, span: sp() }
}

fn lit() -> impl Strategy<Value = Lit> {
    prop_oneof![
        any::<bool>().prop_map(Lit::Bool),
        any::<i64>().prop_map(Lit::Int),
        (-20i64..20).prop_map(Lit::Int),
        str_value().prop_map(Lit::Str),
        any::<u64>().prop_map(Lit::DurationMs),
        (0u64..100).prop_map(|s| Lit::DurationMs(s * 1000)),
    ]
}

fn path() -> impl Strategy<Value = Vec<Ident>> {
    prop::collection::vec(ident(), 1..3)
}

fn plain_ref() -> impl Strategy<Value = Expr> {
    path().prop_map(|path| expr_of(ExprKind::Ref { path, args: None }))
}

fn cmp_op() -> impl Strategy<Value = CmpOp> {
    prop::sample::select(vec![
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
        CmpOp::Contains,
    ])
}

fn quant() -> impl Strategy<Value = Quant> {
    prop::sample::select(vec![Quant::Any, Quant::All, Quant::None])
}

/// Any expression tree; [`normalize`] then adds the parentheses the grammar needs.
fn raw_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![lit().prop_map(|l| expr_of(ExprKind::Lit(l))), plain_ref()];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_map(|e| expr_of(ExprKind::Not(Box::new(e)))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| expr_of(ExprKind::And(v))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| expr_of(ExprKind::Or(v))),
            (cmp_op(), inner.clone(), inner.clone()).prop_map(|(op, l, r)| expr_of(ExprKind::Cmp(
                op,
                Box::new(l),
                Box::new(r)
            ))),
            (
                quant(),
                ident(),
                path(),
                prop::option::of(prop::collection::vec(inner.clone(), 0..2)),
                inner.clone()
            )
                .prop_map(|(quant, var, path, args, body)| expr_of(ExprKind::Quant {
                    quant,
                    var,
                    list: Box::new(expr_of(ExprKind::Ref { path, args })),
                    body: Box::new(body),
                })),
            inner
                .clone()
                .prop_map(|e| expr_of(ExprKind::Paren(Box::new(e)))),
            (path(), prop::collection::vec(inner, 0..3)).prop_map(|(path, a)| expr_of(
                ExprKind::Ref {
                    path,
                    args: Some(a)
                }
            )),
        ]
    })
}

fn expr() -> impl Strategy<Value = Expr> {
    raw_expr().prop_map(normalize)
}

fn operand() -> impl Strategy<Value = Expr> {
    raw_expr().prop_map(|e| as_operand(normalize(e)))
}

fn paren(e: Expr) -> Expr {
    expr_of(ExprKind::Paren(Box::new(e)))
}

fn is_operand(e: &Expr) -> bool {
    matches!(
        e.kind,
        ExprKind::Lit(_) | ExprKind::Ref { .. } | ExprKind::Quant { .. } | ExprKind::Paren(_)
    )
}

fn as_operand(e: Expr) -> Expr {
    if is_operand(&e) { e } else { paren(e) }
}

/// Operands of `and` and `not`: a negation, a comparison or an operand.
fn as_neg(e: Expr) -> Expr {
    match e.kind {
        ExprKind::And(_) | ExprKind::Or(_) => paren(e),
        _ => e,
    }
}

/// The tree the parser would build for the printed form of `e`: parentheses wherever the
/// precedence (or, and, not, comparison) would otherwise regroup it.
fn normalize(e: Expr) -> Expr {
    let kind = match e.kind {
        ExprKind::Lit(l) => ExprKind::Lit(l),
        ExprKind::Ref { path, args } => ExprKind::Ref {
            path,
            args: args.map(|a| a.into_iter().map(normalize).collect()),
        },
        ExprKind::Not(x) => ExprKind::Not(Box::new(as_neg(normalize(*x)))),
        ExprKind::And(xs) => ExprKind::And(xs.into_iter().map(|x| as_neg(normalize(x))).collect()),
        ExprKind::Or(xs) => ExprKind::Or(
            xs.into_iter()
                .map(|x| match normalize(x) {
                    x @ Expr {
                        kind: ExprKind::Or(_),
                        ..
                    } => paren(x),
                    x => x,
                })
                .collect(),
        ),
        ExprKind::Cmp(op, l, r) => ExprKind::Cmp(
            op,
            Box::new(as_operand(normalize(*l))),
            Box::new(as_operand(normalize(*r))),
        ),
        ExprKind::Quant {
            quant,
            var,
            list,
            body,
        } => ExprKind::Quant {
            quant,
            var,
            list: Box::new(normalize(*list)),
            body: Box::new(match normalize(*body) {
                b @ Expr {
                    kind: ExprKind::Paren(_),
                    ..
                } => b,
                b => paren(b),
            }),
        },
        ExprKind::Paren(x) => ExprKind::Paren(Box::new(normalize(*x))),
    };
    expr_of(kind)
}

fn recipients() -> impl Strategy<Value = Recipients> {
    prop::sample::select(vec![Recipients::RecipientList, Recipients::GroupMembers])
}

fn selection() -> impl Strategy<Value = Selection> {
    (any::<bool>(), any::<bool>()).prop_map(|(without_originator, distinct)| Selection {
        without_originator,
        distinct,
    })
}

fn attr_name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9._-]{0,8}"
}

fn sdp_item() -> impl Strategy<Value = SdpItem> {
    prop_oneof![
        Just(SdpItemKind::PathOwn),
        Just(SdpItemKind::MediaFromOffer),
        Just(SdpItemKind::AcceptTypesIntersect),
        Just(SdpItemKind::AcceptWrappedTypesIntersect),
        Just(SdpItemKind::MaxSizeOwn),
        Just(SdpItemKind::DirectionMirror),
        Just(SdpItemKind::SetupComplement),
        attr_name().prop_map(SdpItemKind::Echo),
        (
            attr_name(),
            prop::option::of(strlit()),
            prop::option::of(expr())
        )
            .prop_map(|(n, v, w)| SdpItemKind::Attribute(n, v, w)),
        (prop::option::of(100u16..700), prop::option::of(strlit()))
            .prop_map(|(s, r)| SdpItemKind::Else(s.map(|s| (s, sp())), r)),
    ]
    .prop_map(|kind| SdpItem { kind, span: sp() })
}

fn respond_item() -> impl Strategy<Value = RespondItem> {
    prop_oneof![
        (attr_name(), strlit()).prop_map(|(n, v)| RespondItem::Header(id(n), v)),
        prop::collection::vec(strlit(), 0..3).prop_map(|p| RespondItem::ContactFocus(sp(), p)),
        (prop::option::of(100u16..700), strlit())
            .prop_map(|(c, w)| RespondItem::Warning(c.map(|c| (c, sp())), w)),
        prop::collection::vec(sdp_item(), 0..4).prop_map(|v| RespondItem::Sdp(v, sp())),
    ]
}

fn offer_item() -> impl Strategy<Value = OfferItem> {
    prop_oneof![
        attr_name().prop_map(OfferItemKind::Direction),
        attr_name().prop_map(OfferItemKind::Setup),
        Just(OfferItemKind::AcceptWrappedTypesOwn),
        Just(OfferItemKind::MaxSizeOwn),
        (attr_name(), prop::option::of(strlit())).prop_map(|(n, v)| OfferItemKind::Attribute(n, v)),
    ]
    .prop_map(|kind| OfferItem { kind, span: sp() })
}

fn invite_item() -> impl Strategy<Value = InviteItem> {
    prop_oneof![
        (attr_name(), strlit()).prop_map(|(n, v)| InviteItem::Header(id(n), v)),
        prop::collection::vec(strlit(), 0..3).prop_map(|p| InviteItem::ContactFocus(sp(), p)),
        Just(InviteItem::History(sp())),
        prop::collection::vec(offer_item(), 0..4).prop_map(|v| InviteItem::Offer(v, sp())),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (
            prop::option::of(0u16..1000),
            prop::option::of(strlit()),
            prop::collection::vec(respond_item(), 0..3)
        )
            .prop_map(|(status, reason, items)| ActionKind::Respond(Respond {
                status: status.map(|s| (s, sp())),
                reason,
                items,
            })),
        clause().prop_map(ActionKind::Call),
        ident().prop_map(ActionKind::Goto),
        (
            recipients(),
            selection(),
            prop::collection::vec(invite_item(), 0..4)
        )
            .prop_map(|(r, s, items)| ActionKind::InviteEach(r, s, items)),
        (
            recipients(),
            selection(),
            prop::collection::vec(invite_item(), 0..3)
        )
            .prop_map(|(r, s, items)| ActionKind::ForwardEach(r, s, items)),
        Just(ActionKind::Cancel),
        Just(ActionKind::Bye),
        Just(ActionKind::CancelLegs),
        Just(ActionKind::ByeLegs),
        prop::collection::vec(attr_name(), 0..3).prop_map(|ws| ActionKind::Deliver(
            ws.into_iter()
                .map(|w| DeliverItem::SuccessReport(w, sp()))
                .collect()
        )),
        any::<bool>().prop_map(ActionKind::SendImdn),
        any::<bool>().prop_map(ActionKind::CollectImdn),
        Just(ActionKind::ForwardImdn),
        Just(ActionKind::AcceptSubscription),
        Just(ActionKind::NotifySubscribers),
        Just(ActionKind::StoreCopy),
        Just(ActionKind::Report(Report::Success)),
        (prop::option::of(0u16..1000), prop::option::of(strlit())).prop_map(|(status, reason)| {
            ActionKind::Report(Report::Failure {
                status: status.map(|s| (s, sp())),
                reason,
            })
        }),
        (ident(), operand()).prop_map(|(t, e)| ActionKind::StartTimer(t, e)),
        ident().prop_map(ActionKind::StopTimer),
        strlit().prop_map(ActionKind::Log),
        prop::option::of(prop::option::of(0u16..1000))
            .prop_map(|o| ActionKind::Outcome(o.map(|s| s.map(|s| (s, sp()))))),
    ]
    .prop_map(|kind| Action { kind, span: sp() })
}

fn rule(otherwise: bool) -> impl Strategy<Value = Rule> {
    let name = if otherwise {
        prop_oneof![Just(id("otherwise".into())), ident()].boxed()
    } else {
        ident().boxed()
    };
    let when = if otherwise {
        Just(None).boxed()
    } else {
        prop::option::of(expr()).boxed()
    };
    (
        name,
        prop::option::of(clause()),
        when,
        prop::collection::vec(action(), 0..4),
    )
        .prop_map(|(name, clause, when, actions)| Rule {
            name,
            clause,
            when,
            actions,
            span: sp(),
        })
}

fn rule_or_otherwise() -> impl Strategy<Value = BlockItem> {
    prop_oneof![
        3 => rule(false).prop_map(BlockItem::Rule),
        1 => rule(true).prop_map(BlockItem::Otherwise),
    ]
}

fn block_item() -> impl Strategy<Value = BlockItem> {
    prop_oneof![
        3 => rule_or_otherwise(),
        1 => prop::collection::vec(rule_or_otherwise(), 0..4)
            .prop_map(|items| BlockItem::First(FirstBlock { items, span: sp() })),
    ]
}

fn method() -> impl Strategy<Value = String> {
    "[A-Z][A-Z_-]{0,7}"
}

fn status_pattern() -> impl Strategy<Value = String> {
    "[0-9][0-9x][0-9x]"
}

fn trigger() -> impl Strategy<Value = Trigger> {
    prop_oneof![
        method().prop_map(TriggerKind::Initial),
        prop_oneof![method(), Just("other".to_string())].prop_map(TriggerKind::Request),
        (status_pattern(), prop::option::of(status_pattern()))
            .prop_map(|(lo, hi)| TriggerKind::Response(lo, hi)),
        ident().prop_map(TriggerKind::Timer),
        prop::sample::select(vec![
            "connected",
            "message",
            "delivered",
            "failed",
            "closed"
        ])
        .prop_map(|e| TriggerKind::Msrp(e.to_string())),
        Just(TriggerKind::LegsSettled),
        Just(TriggerKind::LegsChanged),
        prop::sample::select(vec!["delivered", "failed", "unroutable", "expired"])
            .prop_map(|e| TriggerKind::Copy(e.to_string())),
        prop::sample::select(vec!["cancelled", "unroutable"])
            .prop_map(|e| TriggerKind::Leg(e.to_string())),
        Just(TriggerKind::Shutdown),
    ]
    .prop_map(|kind| Trigger { kind, span: sp() })
}

fn handler() -> impl Strategy<Value = Handler> {
    (
        trigger(),
        prop::collection::vec(ident(), 0..3),
        prop::collection::vec(block_item(), 0..4),
    )
        .prop_map(|(trigger, in_states, items)| Handler {
            trigger,
            in_states,
            block: Block { items, span: sp() },
            span: sp(),
        })
}

fn states_block() -> impl Strategy<Value = StatesBlock> {
    prop::collection::vec((ident(), any::<bool>(), any::<bool>()), 0..5).prop_map(|v| StatesBlock {
        states: v
            .into_iter()
            .map(|(name, initial, is_final)| StateDecl {
                name,
                initial,
                is_final,
                span: sp(),
            })
            .collect(),
        span: sp(),
    })
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        1 => strlit().prop_map(Item::Import),
        2 => (ident(), prop::option::of(clause()), expr()).prop_map(|(name, clause, expr)| {
            Item::Condition(ConditionDef { name, clause, expr, span: sp() })
        }),
        3 => (
            ident(),
            prop::option::of(clause()),
            prop::option::of(strlit()),
            prop::collection::vec(states_block(), 0..2),
            prop::collection::vec(ident(), 0..3),
            prop::collection::vec(handler(), 0..4),
        )
            .prop_map(|(name, clause, title, states, timers, handlers)| {
                Item::Procedure(Procedure { name, clause, title, states, timers, handlers, span: sp() })
            }),
    ]
}

fn file() -> impl Strategy<Value = File> {
    prop::collection::vec(item(), 0..4).prop_map(|items| File { file: 0, items })
}

#[path = "proptest_parse/noisy.rs"]
mod noisy;
use noisy::noisy;

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn comments_of(src: &str) -> Vec<String> {
    sorted(scan_comments(src).into_iter().map(|c| c.text).collect())
}

/// Formats `src` (which parses to `tree`) and checks: the output parses to the same tree, holds
/// the same comments, and formats to itself.
fn check_format(src: &str, tree: &File) -> Result<(), TestCaseError> {
    let out = format_source(src).map_err(|d| TestCaseError::fail(format!("fmt: {}", d.message)))?;
    let back = parse_file(0, &out).map_err(|d| {
        TestCaseError::fail(format!(
            "formatted text does not parse: {}\n{out}",
            d.message
        ))
    })?;
    prop_assert!(
        same_ignoring_spans(tree, &back),
        "formatting changed the tree\n--- input ---\n{src}\n--- output ---\n{out}"
    );
    prop_assert_eq!(
        comments_of(src),
        comments_of(&out),
        "comments changed\n{}",
        out
    );
    let again = format_source(&out).map_err(|d| TestCaseError::fail(d.message))?;
    prop_assert_eq!(&out, &again, "not idempotent\n--- input ---\n{}", src);
    Ok(())
}

/// `cases` per property by default, so the suite stays fast; `PROPTEST_CASES=…` runs deeper.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(160))]

    /// Noisy text parses back to the generated tree, and the formatter keeps tree and comments
    /// and is idempotent.
    #[test]
    fn noisy_print_parses_back_and_formats_idempotently(f in file(), seed in any::<u64>()) {
        let (src, written) = noisy(&f, seed);
        let parsed = parse_file(0, &src)
            .map_err(|d| TestCaseError::fail(format!("noisy text does not parse: {}\n{src}", d.message)))?;
        prop_assert_eq!(without_spans(&parsed), f.clone(), "noisy text parsed differently\n{}", src);
        prop_assert_eq!(comments_of(&src), sorted(written), "scan_comments disagrees with the printer\n{}", src);
        check_format(&src, &f)?;
    }

    /// The parser and formatter never panic on arbitrary text.
    #[test]
    fn parser_never_panics_on_arbitrary_strings(s in ".{0,200}") {
        let _ = parse_file(0, &s);
        let _ = format_source(&s);
    }

    /// … nor on arbitrary bytes, read lossily as text.
    #[test]
    fn parser_never_panics_on_arbitrary_bytes(b in prop::collection::vec(any::<u8>(), 0..300)) {
        let s = String::from_utf8_lossy(&b);
        let _ = parse_file(0, &s);
        let _ = format_source(&s);
    }

    /// … nor on texts made of the language's own tokens in random order (which get much
    /// further into the grammar than random characters do).
    #[test]
    fn parser_never_panics_on_token_soup(toks in prop::collection::vec(prop::sample::select(vec![
        "procedure", "p", "{", "}", "on", "initial", "INVITE", "rule", "r", "[1.2]", "when", "=>",
        "respond", "200", "\"x\"", "(", ")", "and", "or", "not", "any", "x", "in", "where", "==",
        "contains", "first", "otherwise", "states", "final", "timer", "start", "after", "5s",
        "condition", "=", "import", "sdp", "attribute", "echo", ".", ",", "..", "1xx", "//c\n",
        "-3", "goto", "call", "7.9", "header", "X-A", "contact", "focus", "\"", "\n",
    ]), 0..40)) {
        let s = toks.join(" ");
        if let Ok(tree) = parse_file(0, &s) {
            check_format(&s, &tree)?;
        }
    }
}

fn spec_texts() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("specs/ is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "imspec"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("spec is readable"))
        .collect()
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let pos = any::<usize>();
    prop_oneof![
        (pos, any::<u8>()).prop_map(|(p, b)| Mutation::Flip(p, b)),
        pos.prop_map(Mutation::Truncate),
        (
            pos,
            prop::collection::vec(
                prop_oneof![
                    any::<u8>(),
                    prop::sample::select(b"{}()\"/\n =>.,[]x0".to_vec())
                ],
                1..6
            )
        )
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
        (pos, 1usize..20).prop_map(|(p, n)| Mutation::Delete(p, n)),
    ]
}

fn apply(text: &str, muts: &[Mutation]) -> String {
    let mut b = text.as_bytes().to_vec();
    for m in muts {
        let len = b.len();
        match m {
            Mutation::Flip(p, x) if len > 0 => b[p % len] ^= x | 1,
            Mutation::Truncate(p) => b.truncate(p % (len + 1)),
            Mutation::Insert(p, bytes) => {
                let at = p % (len + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            Mutation::Delete(p, n) if len > 0 => {
                let at = p % len;
                b.drain(at..(at + n).min(len));
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

proptest! {
    #![proptest_config(config(200))]

    /// Mutated specs never make the parser or formatter panic; mutants that still parse
    /// format with their tree and comments kept, idempotently.
    #[test]
    fn mutated_specs_never_panic(which in any::<prop::sample::Index>(), muts in prop::collection::vec(mutation(), 1..4)) {
        let texts = spec_texts();
        prop_assume!(!texts.is_empty());
        let text = apply(which.get::<String>(&texts), &muts);
        if let Ok(tree) = parse_file(0, &text) {
            check_format(&text, &tree)?;
        }
    }
}
