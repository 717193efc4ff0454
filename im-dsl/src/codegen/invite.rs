//! The `im_runtime::machine::Invitation` of an `invite each … { … }`: headers (interpolated
//! when the action is produced), the focus Contact's parameters, the history part and the
//! offer's attributes, in the spec's order.

use super::expr::Cx;
use crate::model::{Invitation, OfferAttr};
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
        let v = cx.text(value);
        headers.push(quote!((#cow(#name), #hv::Text(#v))));
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

fn vec_of(items: &[TokenStream]) -> TokenStream {
    if items.is_empty() {
        quote!(::std::vec::Vec::new())
    } else {
        quote!(::std::vec::Vec::from([#(#items),*]))
    }
}
