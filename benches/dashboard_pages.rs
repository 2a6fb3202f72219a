//! Dashboard page load times with 10,000 appointments (to be written).
fn main() {}
