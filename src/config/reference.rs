//! `docs/configuration.md`, rendered from the commented defaults file;
//! only the `configuration_reference` test uses it, to compare and bless.

/// The command-line flag that overrides each setting.
const FLAGS: &[(&str, &str)] = &[
    ("default_workers", "`-n N|auto`"),
    ("worker_start", "`--worker-start`"),
    ("retries", "`--retries N`"),
    ("timeout", "`--timeout SECS`"),
    ("slow_timeout", "`--slow-timeout SECS`"),
    ("max_memory", "`--max-memory SIZE`"),
    ("worker_memory", "`--worker-memory SIZE`"),
    ("test_order", "`--test-order collection|longest`"),
    ("daemon_idle_timeout", "`rpytest serve --idle-timeout SECS`"),
    ("daemon_max_memory", "`rpytest serve --max-memory SIZE`"),
];

/// `docs/configuration.md`, rendered from the commented defaults file:
/// each setting's comment, default, environment variable and flag.
pub(super) fn reference(defaults: &str) -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from config/defaults.toml by `RPYTEST_BLESS=1 cargo test --release --lib \
         configuration_reference`; a test fails when the two disagree. Edit the defaults file, not this page. -->\n\n\
         rpytest reads `[tool.rpytest]` from the nearest `pyproject.toml` at or above pytest's rootdir, \
         which it finds as pytest does (`--rootdir`, `-c`, the path arguments, then the first directory \
         with a pytest configuration file), so running from another directory uses the project's settings; \
         if pytest then reports another rootdir, rpytest warns. \
         Each setting can also come from the environment as `RPYTEST_<KEY>`, which overrides the file; \
         the command-line flag overrides both. An unknown key or a bad value is a usage error (exit 4) \
         naming the file or variable.\n\n```toml\n# pyproject.toml\n[tool.rpytest]\n",
    );
    let settings = documented_settings(defaults);
    for (key, value, _) in &settings {
        out += &format!("{key} = {value}\n");
    }
    out += "```\n";
    for (key, value, comment) in settings {
        let flag = FLAGS.iter().find(|(k, _)| *k == key).map_or("none", |(_, f)| f);
        out += &format!(
            "\n## `{key}`\n\n{comment}\n\n- default: `{value}`\n- environment: `RPYTEST_{}`\n- flag: {flag}\n",
            key.to_ascii_uppercase()
        );
    }
    out
}

/// (key, default as written, the comment above it joined into a paragraph).
pub(super) fn documented_settings(defaults: &str) -> Vec<(String, String, String)> {
    let mut settings = Vec::new();
    let mut comment: Vec<&str> = Vec::new();
    for line in defaults.lines().map(str::trim) {
        if let Some(text) = line.strip_prefix('#') {
            comment.push(text.trim());
        } else if let Some((key, value)) = line.split_once('=') {
            settings.push((key.trim().to_string(), value.trim().to_string(), comment.join(" ")));
            comment.clear();
        } else {
            comment.clear();
        }
    }
    settings
}
