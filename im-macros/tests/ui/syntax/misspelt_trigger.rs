mod spec {
    im_macros::imspec!("misspelt_trigger.imspec");
}

fn main() {
    // The stub keeps the public names: no follow-on errors here.
    let _ = spec::SPEC;
    let _ = spec::by_clause("1.1");
}
