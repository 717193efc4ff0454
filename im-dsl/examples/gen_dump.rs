//! Prints the generated Rust for a spec (development aid).
fn main() {
    let path = std::env::args().nth(1).unwrap_or_default();
    match im_dsl::load::check_path(std::path::Path::new(&path)) {
        Ok((_, spec)) => {
            let ts = im_dsl::codegen::generate(&spec);
            match syn::parse2::<syn::File>(ts.clone()) {
                Ok(f) => println!("{}", prettyplease::unparse(&f)),
                Err(e) => println!("PARSE ERROR {e}\n{ts}"),
            }
        }
        Err((sources, diags)) => {
            for d in diags {
                eprintln!("{}", d.render(&sources));
            }
        }
    }
}
