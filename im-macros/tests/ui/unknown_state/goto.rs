mod spec {
    im_macros::imspec!("goto.imspec");
}

fn main() {
    // The stub keeps the public names, procedure modules included: no follow-on errors.
    let _ = spec::SPEC;
    let _ = spec::by_clause("1.1");
    let _ = spec::leg::Machine::new();
    let _ = spec::leg::PROCEDURE;
}
