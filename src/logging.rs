//! The function's log: one JSON object per line when Lambda's log format is JSON (the template
//! sets it), plain text otherwise, at the level of `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced
//! logging controls) or `RUST_LOG`, `info` by default.
//!
//! What `lambda_http::tracing::init_default_subscriber` does, but with a plain level instead of
//! an `EnvFilter`: the filter's directive language pulls a regular-expression engine into the
//! binary (a fifth of its size), which a level does not need. `RUST_LOG` therefore takes a level
//! name (`error`, `warn`, `info`, `debug`, `trace`, `off`), not directives.

use tracing::level_filters::LevelFilter;

/// The level named by `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `info`; an unknown name is
/// `info` (as Lambda's own runtimes treat it).
pub fn level(lookup: impl Fn(&str) -> Option<String>) -> LevelFilter {
    lookup("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|| lookup("RUST_LOG"))
        .and_then(|name| name.trim().parse().ok())
        .unwrap_or(LevelFilter::INFO)
}

/// Installs the subscriber for the process.
pub fn init() {
    let lookup = |name: &str| std::env::var(name).ok();
    let json = lookup("AWS_LAMBDA_LOG_FORMAT").is_some_and(|format| format.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_target(false).without_time().with_max_level(level(lookup));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_comes_from_lambda_then_rust_log_then_info() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(level(env(&[])), LevelFilter::INFO);
        assert_eq!(level(env(&[("RUST_LOG", "debug")])), LevelFilter::DEBUG);
        assert_eq!(level(env(&[("AWS_LAMBDA_LOG_LEVEL", "ERROR"), ("RUST_LOG", "debug")])), LevelFilter::ERROR);
        assert_eq!(level(env(&[("AWS_LAMBDA_LOG_LEVEL", "warn")])), LevelFilter::WARN);
        assert_eq!(level(env(&[("RUST_LOG", "momento=debug")])), LevelFilter::INFO, "directives fall back to info");
    }
}
