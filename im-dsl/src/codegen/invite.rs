//! The `im_runtime::machine::Invitation` of an `invite each … { … }`: headers (interpolated
//! when the action is produced), the focus Contact's parameters, the history part and the
//! offer's attributes, in the spec's order.

use super::expr::Cx;
use crate::check::INVITEE;
use crate::model::{Expr, Field, Invitation, OfferAttr, Text, TextPart};
use proc_macro2::TokenStream;
use quote::quote;

/// The expression building `inv` (facts are read through `cx`'s bindings).
pub(super) fn invitation(cx: &mut Cx<'_>, inv: &Invitation) -> TokenStream {
    let m = quote!(::im_runtime::machine);
    let cow = quote!(::std::borrow::Cow::Borrowed);
    let hv = quote!(#m::HeaderValue);
    let mut headers = Vec::new();
    match &inv.contact_focus {
        Some(params) if params.is_empty() => {
            headers.push(quote!((#cow("Contact"), #hv::FocusContact)));
        }
        Some(params) => {
            let p: String = params.iter().map(|p| format!(";{p}")).collect();
            headers.push(quote!((#cow("Contact"), #hv::FocusContactWith(#cow(#p)))));
        }
        None => {}
    }
    for (name, value) in &inv.headers {
        let v = match per_invitee(cx, value) {
            Some(pieces) => quote!(#hv::PerInvitee(::std::vec::Vec::from([#(#pieces),*]))),
            None => {
                let v = cx.text(value);
                quote!(#hv::Text(#v))
            }
        };
        headers.push(quote!((#cow(#name), #v)));
    }
    let offer: Vec<TokenStream> = inv
        .offer
        .iter()
        .map(|a| match a {
            OfferAttr::OwnAcceptWrappedTypes => quote!(#m::OfferItem::OwnAcceptWrappedTypes),
            OfferAttr::OwnMaxSize => quote!(#m::OfferItem::OwnMaxSize),
            OfferAttr::Fixed(name, value) => {
                let v = match value {
                    Some(v) => quote!(::core::option::Option::Some(#cow(#v))),
                    None => quote!(::core::option::Option::None),
                };
                quote!(#m::OfferItem::Fixed(#cow(#name), #v))
            }
        })
        .collect();
    let headers = vec_of(&headers);
    let offer = vec_of(&offer);
    let history = inv.history;
    quote! {
        #m::Invitation { headers: #headers, history: #history, offer: #offer }
    }
}

/// The pieces of a value that names its recipient (`{invitee.uri}`), the rest interpolated
/// now; `None` for a value that is the same for every recipient.
fn per_invitee(cx: &mut Cx<'_>, t: &Text) -> Option<Vec<TokenStream>> {
    let field = |p: &TextPart| match p {
        TextPart::Value(Expr::Field(x, f)) if matches!(&**x, Expr::Var(v) if v == INVITEE) => {
            Some(*f)
        }
        _ => None,
    };
    if !t.parts.iter().any(|p| field(p).is_some()) {
        return None;
    }
    let piece = quote!(::im_runtime::machine::InviteePiece);
    let pieces = t
        .parts
        .iter()
        .map(|p| match field(p) {
            Some(Field::EntryUri) => quote!(#piece::Uri),
            Some(Field::EntryDisplayName) => quote!(#piece::DisplayName),
            Some(Field::EntryCopyControl) => quote!(#piece::CopyControl),
            Some(Field::EntryAnonymize) => quote!(#piece::Anonymize),
            Some(other) => {
                let msg = format!("imspec: internal error: `invitee` has no field {other:?}");
                quote!(::core::compile_error!(#msg))
            }
            None => {
                let v = cx.text(&Text {
                    parts: vec![p.clone()],
                });
                quote!(#piece::Text(#v))
            }
        })
        .collect();
    Some(pieces)
}

fn vec_of(items: &[TokenStream]) -> TokenStream {
    if items.is_empty() {
        quote!(::std::vec::Vec::new())
    } else {
        quote!(::std::vec::Vec::from([#(#items),*]))
    }
}
