// The migrations are embedded in the crate at compile time: this writes `migrations.rs` into
// OUT_DIR, one `(file name, include_str!(file))` per `migrations/*.sql`, in the order of their
// names (see `store::migrations`). A new or changed migration file must rebuild the crate, which
// cargo does not know by itself.
use std::{env, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let dir = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("migrations");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    let mut out = String::from("&[\n");
    for n in &names {
        let path = dir.join(n);
        out += &format!(
            "    ({n:?}, include_str!({:?})),\n",
            path.display().to_string()
        );
    }
    out += "]\n";
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("migrations.rs"),
        out,
    )
    .unwrap();
}
