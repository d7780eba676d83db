//! A production start through the real binary, run from temporary working directories: `init`
//! makes an empty installation and says what next; the demo comes only with the embedded
//! default; commands run from elsewhere refuse instead of making a second database and key;
//! flags win over the environment, which wins over the file; the town's settings are on every
//! page.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;
use common::{free_port, get, get_with, start, Server};

/// A fixed instant for the servers' clocks: no answer here depends on the real date.
const CLOCK: &str = "2026-11-23T10:00:00Z";

/// The binary in `cwd` with `args` and, of the environment, only `env`.
fn sportello(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sportello"));
    cmd.current_dir(cwd).args(args).env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs a command to its end, with warnings only in the log.
fn run(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    sportello(cwd, args, env)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the sportello binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The server in `cwd` on a free port, plain HTTP, with `args`; stopped when dropped.
fn serve(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> (Server, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = sportello(cwd, &["--tls", "off", "--listen", &listen], env);
    cmd.args(["--start-clock-at", CLOCK]).args(args);
    (Server(start(cmd, port, "error", Stdio::null())), port)
}

/// The body of an answer.
fn body(answer: &str) -> &str {
    answer.split("\r\n\r\n").nth(1).unwrap_or("")
}

/// Whether the offices' page lists any office.
fn lists_offices(port: u16) -> bool {
    let home = get(port, "/").expect("the offices' page");
    assert!(home.starts_with("HTTP/1.1 200"), "{home}");
    body(&home).contains("href=\"/uffici/")
}

fn dirs(root: &Path, names: &[&str]) -> Vec<PathBuf> {
    names
        .iter()
        .map(|n| {
            let d = root.join(n);
            std::fs::create_dir_all(&d).unwrap();
            d
        })
        .collect()
}

#[test]
fn init_makes_an_empty_installation_and_says_what_to_do_next() {
    let root = tempfile::tempdir().unwrap();
    let cwd = &dirs(root.path(), &["sede"])[0];
    let made = run(cwd, &["--data-dir", "dati", "init"], &[]);
    assert!(made.status.success(), "{made:?}");
    let out = stdout(&made);
    let data = cwd.join("dati");
    assert!(
        out.contains(&format!("data folder: {}", data.display())),
        "{out}"
    );
    assert!(out.contains("no demo"), "{out}");
    assert!(
        out.contains(&format!(
            "sportello --data-dir {} admin create --email",
            data.display()
        )),
        "the next steps name the installation: {out}"
    );
    assert!(
        out.contains("town_name") && out.contains("privacy_contact"),
        "{out}"
    );
    assert!(data.join("sportello.db").is_file());
    let key = std::fs::read(data.join("secret.key")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key is readable by its owner only");
    }

    // Again: refused, nothing changed.
    let again = run(cwd, &["--data-dir", "dati", "init"], &[]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already"), "{again:?}");
    assert_eq!(std::fs::read(data.join("secret.key")).unwrap(), key);

    // The first administrator; the commands find the installation and seed nothing.
    let admin = run(
        cwd,
        &[
            "--data-dir",
            "dati",
            "admin",
            "create",
            "--email",
            "sindaco@comune.example.it",
        ],
        &[],
    );
    assert!(admin.status.success(), "{admin:?}");
    assert!(stdout(&admin).contains("provisional password: "));

    // The server on it: no demo, even when asked for, as the database was there already; the
    // log says which data folder it uses.
    let log = serve_and_stop(cwd, &["--data-dir", "dati", "--demo"], |port| {
        assert!(
            !lists_offices(port),
            "an installation made by init stays empty"
        );
    });
    assert!(
        log.contains(&format!("data folder: {}", data.display())),
        "{log}"
    );
    assert!(!log.contains("demo comune is in it"), "{log}");
    assert!(!log.contains("secret key was made"), "{log}");
    assert!(log.contains("town_name is not set"), "{log}");

    // A start that has to make a new key for an existing database says what that breaks.
    std::fs::remove_file(data.join("secret.key")).unwrap();
    let log = serve_and_stop(cwd, &["--data-dir", "dati"], |_| {});
    assert!(
        log.contains("a new secret key was made") && log.contains("no longer work"),
        "{log}"
    );
}

/// Starts the server in `cwd` with `args`, runs `check` on its port, stops it with SIGTERM and
/// returns its log (level info).
fn serve_and_stop(cwd: &Path, args: &[&str], check: impl FnOnce(u16)) -> String {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = sportello(cwd, &["--tls", "off", "--listen", &listen], &[]);
    cmd.args(["--start-clock-at", CLOCK]).args(args);
    let child = start(cmd, port, "info", Stdio::piped());
    check(port);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    stdout(&child.wait_with_output().unwrap())
}

#[test]
fn the_demo_comes_with_the_embedded_default_only() {
    let root = tempfile::tempdir().unwrap();
    let [dev, prod, asked] = &dirs(root.path(), &["dev", "prod", "asked"])[..] else {
        unreachable!()
    };
    // No configuration, no data folder: the demo at once, under ./data.
    let (server, port) = serve(dev, &[], &[]);
    assert!(
        lists_offices(port),
        "the README's first command shows the demo"
    );
    drop(server);
    assert!(dev.join("data/sportello.db").is_file());
    // A data folder given: a town's installation, empty...
    let (server, port) = serve(prod, &["--data-dir", "dati"], &[]);
    assert!(!lists_offices(port));
    drop(server);
    // ...unless the demo is asked for, into the new database.
    let (_server, port) = serve(
        asked,
        &["--data-dir", "dati"],
        &[("SPORTELLO_DEMO", "true")],
    );
    assert!(lists_offices(port));
    // Commands never seed it: they need the installation, which now exists and stays empty.
    let admin = run(
        prod,
        &[
            "--data-dir",
            "dati",
            "admin",
            "create",
            "--email",
            "a@comune.example.it",
        ],
        &[],
    );
    assert!(admin.status.success(), "{admin:?}");
    let (_server, port) = serve(prod, &["--data-dir", "dati"], &[]);
    assert!(!lists_offices(port));
}

#[test]
fn commands_run_elsewhere_refuse_instead_of_making_a_second_installation() {
    let root = tempfile::tempdir().unwrap();
    let [etc, elsewhere] = &dirs(root.path(), &["etc", "altrove"])[..] else {
        unreachable!()
    };
    // The installation: a configuration file whose data folder is relative to the file.
    let config = etc.join("sportello.toml");
    std::fs::write(&config, "data_dir = \"../stato\"\ntls = \"off\"\n").unwrap();
    let made = run(etc, &["init"], &[]);
    assert!(made.status.success(), "{made:?}");
    let data = root.path().join("stato");
    assert!(data.join("sportello.db").is_file(), "{}", stdout(&made));
    assert!(stdout(&made).contains(&format!(
        "sportello --config {} admin create",
        config.display()
    )));

    // From another directory, without the configuration: each command refuses, says what to
    // do, and makes nothing there.
    for args in [
        &["admin", "create", "--email", "a@comune.example.it"][..],
        &["admin", "reset-password", "--email", "a@comune.example.it"],
        &["room-link", "SP-AAAA-BBBB"],
        &["backup", "copia.db"],
        &["migrate"],
    ] {
        let o = run(elsewhere, args, &[]);
        assert!(!o.status.success(), "{args:?}");
        let e = stderr(&o);
        assert!(
            e.contains("sportello init")
                && e.contains(&elsewhere.join("data").display().to_string()),
            "{args:?}: {e}"
        );
    }
    let o = run(elsewhere, &["restore", "copia.db"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("does not exist"), "{o:?}");
    assert_eq!(
        std::fs::read_dir(elsewhere).unwrap().count(),
        0,
        "nothing made in the other directory"
    );

    // With the configuration, from anywhere: the same installation.
    let path = config.display().to_string();
    let o = run(elsewhere, &["--config", &path, "migrate"], &[]);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("database schema at migration"));
    let o = run(
        elsewhere,
        &[
            "--config",
            &path,
            "admin",
            "create",
            "--email",
            "a@comune.example.it",
        ],
        &[],
    );
    assert!(o.status.success(), "{o:?}");
    // sportello.toml in the working directory is the configuration too.
    let o = run(
        etc,
        &["admin", "reset-password", "--email", "a@comune.example.it"],
        &[],
    );
    assert!(o.status.success(), "{o:?}");

    // Without its secret key an installation's links cannot be signed: refused, none made.
    std::fs::rename(data.join("secret.key"), data.join("secret.key.aside")).unwrap();
    let o = run(etc, &["room-link", "SP-AAAA-BBBB"], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no secret key") && stderr(&o).contains("put back the secret.key"),
        "{o:?}"
    );
    assert!(!data.join("secret.key").exists());
}

#[test]
fn flags_win_over_the_environment_which_wins_over_the_file() {
    let root = tempfile::tempdir().unwrap();
    let [etc, cwd] = &dirs(root.path(), &["etc", "cwd"])[..] else {
        unreachable!()
    };
    let config = etc.join("s.toml");
    let path = config.display().to_string();
    std::fs::write(&config, "data_dir = \"dal-file\"\n").unwrap();
    let folder = |env: &[(&str, &str)], flags: &[&str]| {
        let mut args = vec!["--config", path.as_str()];
        args.extend_from_slice(flags);
        args.push("init");
        let o = run(cwd, &args, env);
        assert!(o.status.success(), "{o:?}");
        let out = stdout(&o);
        out.lines()
            .find_map(|l| l.trim().strip_prefix("data folder: ").map(PathBuf::from))
            .unwrap_or_else(|| panic!("{out}"))
    };
    assert_eq!(folder(&[], &[]), etc.join("dal-file"));
    let env = [("SPORTELLO_DATA_DIR", "dall-ambiente")];
    assert_eq!(folder(&env, &[]), cwd.join("dall-ambiente"));
    assert_eq!(
        folder(&env, &["--data-dir", "dal-flag"]),
        cwd.join("dal-flag")
    );

    // Mistakes stop the command with a message naming them, wherever they are.
    std::fs::write(&config, "data_dir = \"x\"\nlisen = \"0.0.0.0:80\"\n").unwrap();
    let o = run(cwd, &["--config", &path, "migrate"], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&path) && stderr(&o).contains("lisen"),
        "{o:?}"
    );
    std::fs::write(&config, "privacy_contact = \"il sindaco\"\n").unwrap();
    let o = run(cwd, &["--config", &path, "init"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("privacy_contact"), "{o:?}");
    // A notice file with a terminal escape in it: refused, named, nothing made.
    let notice = config.with_file_name("informativa.txt");
    std::fs::write(&notice, "Testo\u{1b}[2J").unwrap();
    std::fs::write(&config, "privacy_notice = \"informativa.txt\"\n").unwrap();
    let o = run(cwd, &["--config", &path, "init"], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("privacy_notice") && stderr(&o).contains("control character"),
        "{o:?}"
    );
    let o = run(cwd, &["init"], &[("SPORTELLO_MAX_CONNECTIONS", "molte")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--max-connections"), "{o:?}");
    let o = run(cwd, &["init"], &[("SPORTELLO_DEMO", "forse")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--demo"), "{o:?}");
    assert!(
        !cwd.join("data").exists(),
        "nothing made by a refused command"
    );
}

#[test]
fn every_page_shows_the_towns_name_logo_and_contacts() {
    let root = tempfile::tempdir().unwrap();
    let cwd = &dirs(root.path(), &["comune"])[0];
    let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 10 10\"><rect width=\"10\" height=\"10\"/></svg>";
    std::fs::write(cwd.join("stemma.svg"), svg).unwrap();
    std::fs::write(
        cwd.join("sportello.toml"),
        "town_address = \"Via del Comune 2, 07014 Prova\"\ntown_name = \"Dal file\"\n",
    )
    .unwrap();
    let (_server, port) = serve(
        cwd,
        &[
            "--data-dir",
            "dati",
            "--demo",
            "--town-logo",
            "stemma.svg",
            "--privacy-contact",
            "dpo@comune.prova.it",
            "--retention-days",
            "90",
        ],
        &[
            ("SPORTELLO_TOWN_NAME", "Comune di Prova"),
            (
                "SPORTELLO_ACCESSIBILITY_CONTACT",
                "https://form.agid.gov.it/view/prova",
            ),
        ],
    );
    let login = get(port, "/ufficio/accesso").unwrap();
    let error = get(port, "/uffici/999999").unwrap();
    assert!(error.starts_with("HTTP/1.1 404"), "{error}");
    assert!(
        error.to_lowercase().contains("content-type: text/html"),
        "{error}"
    );
    for page in [get(port, "/").unwrap(), login, error] {
        let html = body(&page);
        assert!(!html.contains("Comune di Esempio"), "{html}");
        assert!(
            html.contains("<a class=\"navbar-brand\" href=\"/\">Comune di Prova</a>"),
            "{html}"
        );
        assert!(html.contains("<strong>Comune di Prova</strong> · Via del Comune 2, 07014 Prova"));
        assert!(
            html.contains("<img class=\"town-logo\" src=\"/logo?v="),
            "{html}"
        );
        assert!(html.contains("alt=\"Comune di Prova\""));
        assert!(html
            .contains("<a class=\"text-white\" href=\"/privacy\">Informativa sulla privacy</a>"));
        assert!(html.contains(
            "<a class=\"text-white\" href=\"/accessibilita\">Dichiarazione di accessibilità</a>"
        ));
    }
    let english = get_with(port, "/", "Cookie: lang=en\r\n").unwrap();
    assert!(body(&english).contains(">Accessibility statement</a>"));
    assert!(body(&english).contains(">Privacy notice</a>"));
    // The built-in privacy notice names the town as the controller and its DPO; the
    // accessibility statement has AgID's headings and the town's page for reports.
    let privacy = body(&get(port, "/privacy").unwrap()).to_string();
    assert!(privacy
        .contains("Il titolare del trattamento è Comune di Prova, Via del Comune 2, 07014 Prova."));
    assert!(privacy.contains("<a href=\"mailto:dpo@comune.prova.it\">dpo@comune.prova.it</a>"));
    assert!(privacy.contains("garanteprivacy.it"));
    assert!(
        privacy.contains("sono cancellati 90 giorni dopo l&#39;appuntamento")
            && privacy.contains("dopo 30 giorni"),
        "the notice tells the retention settings"
    );
    let built_in = version_of(&privacy);
    let statement = body(&get(port, "/accessibilita").unwrap()).to_string();
    for heading in [
        "Stato di conformità",
        "Contenuti non accessibili",
        "Redazione della dichiarazione di accessibilità",
        "Meccanismo di feedback e recapiti",
        "Modalità di invio delle segnalazioni all&#39;AgID",
    ] {
        assert!(statement.contains(&format!(">{heading}</h2>")), "{heading}");
    }
    assert!(statement.contains("<a href=\"https://form.agid.gov.it/view/prova\">"));
    let english = get_with(port, "/privacy", "Cookie: lang=en\r\n").unwrap();
    assert!(body(&english).contains("The controller is Comune di Prova"));
    assert_eq!(
        version_of(body(&english)),
        built_in,
        "one notice, one version"
    );
    // The logo, served from the file read at start, with its type.
    let home = get(port, "/").unwrap();
    let src = body(&home)
        .split("<img class=\"town-logo\" src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let logo = get(port, &src).unwrap();
    assert!(logo.starts_with("HTTP/1.1 200"), "{logo}");
    assert!(logo.to_lowercase().contains("content-type: image/svg+xml"));
    assert_eq!(body(&logo), svg);

    // A logo elsewhere: its site, and only it, may serve images to the pages. The town's own
    // privacy notice, from a file: its text and its own version.
    std::fs::write(
        cwd.join("informativa.txt"),
        "Informativa del Comune di Prova.\n\n## Titolare\nComune di Prova, scrivi a privacy@comune.prova.it.\n",
    )
    .unwrap();
    let (_server, port) = serve(
        cwd,
        &[
            "--data-dir",
            "altri",
            "--town-logo",
            "https://www.comune.prova.it/img/stemma.png",
            "--privacy-notice",
            "informativa.txt",
        ],
        &[],
    );
    let own = body(&get(port, "/privacy").unwrap()).to_string();
    assert!(
        own.contains("<p>Informativa del Comune di Prova.</p>"),
        "{own}"
    );
    assert!(own.contains(">Titolare</h2>"));
    assert!(own.contains("<a href=\"mailto:privacy@comune.prova.it\">privacy@comune.prova.it</a>."));
    assert!(!own.contains("garanteprivacy"));
    assert_ne!(version_of(&own), built_in);
    let home = get(port, "/").unwrap();
    assert!(body(&home).contains("src=\"https://www.comune.prova.it/img/stemma.png\""));
    let csp = home
        .lines()
        .find(|l| l.to_lowercase().starts_with("content-security-policy:"))
        .unwrap();
    assert!(
        csp.contains("img-src 'self' data: https://www.comune.prova.it;"),
        "{csp}"
    );
    assert!(get(port, "/logo").unwrap().starts_with("HTTP/1.1 404"));
}

#[test]
fn the_demo_defaults_keep_todays_look() {
    let root = tempfile::tempdir().unwrap();
    let (_server, port) = serve(root.path(), &[], &[]);
    let home = get(port, "/").unwrap();
    let html = body(&home);
    assert!(html.contains("<a class=\"navbar-brand\" href=\"/\">Comune di Esempio</a>"));
    assert!(html.contains("<strong>Comune di Esempio</strong> · Piazza Municipio 1"));
    assert!(
        html.contains("/static/bootstrap-italia/svg/sprites.") && html.contains(".svg#it-pa\""),
        "the icon, without a logo"
    );
    assert!(!html.contains("town-logo"));
    assert!(html.contains("href=\"/privacy\"") && html.contains("href=\"/accessibilita\""));
}

/// The privacy notice's version shown on its page.
fn version_of(page: &str) -> String {
    page.split("<span id=\"notice-version\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("a notice version")
        .to_string()
}

// A town adds a language with one file in `languages_dir`, touching no template: its pages
// and the switch offer it, a text the file lacks comes from its fallback (English here), and a
// file that is not a catalogue stops the server at start with the file's name and the reason.
#[test]
fn a_town_adds_a_language_with_one_file() {
    let root = tempfile::tempdir().unwrap();
    let [cwd, lingue] = &dirs(root.path(), &["cwd", "lingue"])[..] else {
        unreachable!()
    };
    std::fs::write(
        lingue.join("sl.toml"),
        "[lingua]\nnome = \"Slovenščina\"\nsigla = \"SLV\"\nriserva = \"en\"\n\n[testi]\n\
         \"Uffici\" = \"Uradi\"\n\"Lingua\" = \"Jezik\"\n",
    )
    .unwrap();
    let dir = lingue.display().to_string();
    let (_server, port) = serve(cwd, &["--languages-dir", &dir], &[]);
    let home = get_with(port, "/", "Cookie: lang=sl\r\n").unwrap();
    let page = body(&home);
    assert!(page.contains("<html lang=\"sl\">"), "{page}");
    assert!(
        page.contains("aria-label=\"Jezik\""),
        "its own text: {page}"
    );
    let office = get_with(port, "/uffici/8", "Cookie: lang=sl\r\n").unwrap();
    assert!(body(&office).contains(">Uradi<"), "{office}");
    // What the file lacks is in English, its fallback, never a key.
    assert!(page.contains("Virtual counter"), "{page}");
    // Every language in the switch, this one marked as the page's.
    for (code, short) in [("it", "ITA"), ("en", "ENG"), ("de", "DEU"), ("sl", "SLV")] {
        assert!(page.contains(&format!("href=\"/lingua/{code}\"")), "{code}");
        assert!(page.contains(&format!(">{short}</abbr>")), "{short}");
    }
    assert!(page.contains("hreflang=\"sl\" title=\"Slovenščina\" aria-current=\"true\""));
    let switch = get(port, "/lingua/sl").unwrap();
    assert!(switch.starts_with("HTTP/1.1 303"), "{switch}");
    // The built-in German needs no file.
    let de = get_with(port, "/uffici/8", "Cookie: lang=de\r\n").unwrap();
    assert!(body(&de).contains("<html lang=\"de\">"));
    assert!(body(&de).contains("Worum geht es?"), "{de}");

    // Broken files refuse to start, naming the file and why.
    for (name, text, why) in [
        (
            "fr.toml",
            "[lingua]\nnome = \"Français\"\n[testi]\n",
            "sigla",
        ),
        (
            "Fr.toml",
            "[lingua]\nnome = \"x\"\nsigla = \"X\"\n[testi]\n",
            "ISO 639",
        ),
        (
            "fr.toml",
            "[lingua]\nnome = \"x\"\nsigla = \"X\"\nriserva = \"xx\"\n[testi]\n",
            "fallback language xx",
        ),
        (
            "fr.toml",
            "[lingua]\nnome = \"x\"\nsigla = \"X\"\n[testi]\n\"a\" = 1\n",
            "fr",
        ),
    ] {
        let bad = root.path().join("bad");
        let _ = std::fs::remove_dir_all(&bad);
        std::fs::create_dir_all(&bad).unwrap();
        std::fs::write(bad.join(name), text).unwrap();
        let out = run(
            cwd,
            &[
                "--tls",
                "off",
                "--languages-dir",
                &bad.display().to_string(),
            ],
            &[],
        );
        assert!(!out.status.success(), "{name}: {text}");
        let err = stderr(&out);
        assert!(
            err.contains("languages_dir") && err.contains(why),
            "{why}: {err}"
        );
    }
}
