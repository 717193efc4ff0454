//! Dumps the AST of a file (development aid).
fn main() {
    let path = std::env::args().nth(1).unwrap_or_default();
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut sources = im_dsl::source::Sources::default();
    let f = sources.add(im_dsl::source::SourceFile::new(
        path.clone(),
        None,
        text.clone(),
    ));
    match im_dsl::parse::parse_file(f, &text) {
        Ok(ast) => println!("{ast:#?}"),
        Err(d) => println!("{}", d.render(&sources)),
    }
}
