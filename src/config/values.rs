//! The text forms of setting values (sizes, counts, seconds, fixture
//! names), shared by pyproject.toml, `RPYTEST_<KEY>` variables and the
//! command-line flags.

/// A size in bytes: a number with an optional unit, K/M/G/T (powers of
/// 1024, with or without "iB"/"B"): `1000M`, `1.5G`, `512MiB`, `1048576`.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let bad = || format!("invalid size '{text}': expected a number of bytes with an optional unit, e.g. 1000M or 2G");
    let t = text.trim();
    let digits = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit.trim_end_matches("IB").trim_end_matches('B');
    let scale = match unit {
        "" => 1u64,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = number * scale as f64;
    if !bytes.is_finite() || bytes < 1.0 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// `max_memory`: a size (also `--max-memory`), or "available" (the default).
pub fn parse_max_memory(text: &str) -> Result<Option<u64>, String> {
    match text.trim() {
        "available" => Ok(None),
        size => parse_memory(size).map(Some),
    }
}

/// `daemon_max_memory` (also `serve --max-memory`): a size, or "auto" (a
/// quarter of the memory available when the daemon starts: None).
pub fn parse_daemon_max_memory(text: &str) -> Result<Option<u64>, String> {
    match text.trim() {
        "auto" => Ok(None),
        size => parse_memory(size).map(Some).map_err(|_| {
            format!(
                "invalid size '{text}': expected bytes (536870912) or a size with a unit (\"512MiB\", \"2GiB\"), \
                 or \"auto\" for a quarter of the available memory"
            )
        }),
    }
}

/// `--max-memory`'s value: bytes, or None for "available".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxMemory(pub Option<u64>);

pub fn parse_max_memory_flag(text: &str) -> Result<MaxMemory, String> {
    parse_max_memory(text).map(MaxMemory)
}

/// A retry count: a whole number >= 0 (also `--retries`).
pub fn parse_retries(text: &str) -> Result<u32, String> {
    text.trim().parse::<u32>().map_err(|_| format!("invalid value '{text}': expected a whole number >= 0"))
}

/// A time limit in seconds: a number >= 0, 0 meaning none (also `--timeout`).
pub fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(secs) if secs >= 0.0 && secs.is_finite() => Ok(secs),
        _ => Err(format!("invalid value '{text}': expected seconds, a number >= 0 (0: no limit)")),
    }
}

/// A TOML list of fixture names, in the text form the environment uses.
pub(super) fn fixture_list(value: &toml::Value) -> Result<String, String> {
    let expected = || "shared_session_fixtures: expected a list of fixture names, e.g. [\"database\"]".to_string();
    let items = value.as_array().ok_or_else(expected)?;
    let names: Option<Vec<&str>> = items.iter().map(toml::Value::as_str).collect();
    Ok(names.ok_or_else(expected)?.join(","))
}

/// Fixture names separated by commas or spaces; each must be a Python name.
pub(super) fn fixture_names(text: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = text.split([',', ' ']).filter(|n| !n.is_empty()).map(str::to_string).collect();
    match names.iter().find(|n| !is_python_name(n)) {
        Some(bad) => Err(format!("shared_session_fixtures: '{bad}' is not a fixture name")),
        None => Ok(names),
    }
}

fn is_python_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_') && chars.all(|c| c.is_alphanumeric() || c == '_')
}
