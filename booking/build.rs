// The migrations are embedded in the crate at compile time (`sqlx::migrate!`): a new or changed
// migration file must rebuild it, which cargo does not know by itself.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
