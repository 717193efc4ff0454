//! Compile-fail tests: each spec error kind becomes a `compile_error!` on the path literal
//! quoting the `.imspec` path, line, column and snippet, with no follow-on errors in the
//! user's code (the stub keeps the public names). `.stderr` files are stable because the
//! toolchain is pinned (rust-toolchain.toml).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
}
