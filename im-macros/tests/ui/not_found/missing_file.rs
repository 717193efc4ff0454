mod spec {
    im_macros::imspec!("specs/no_such_spec.imspec");
}

fn main() {
    let _ = spec::SPEC;
    let _ = spec::methods();
}
