//! One way to get every answer: from its flag, from its default (`--yes`, or no terminal),
//! or from a question in the terminal (inquire), asked again with the reason until the
//! answer is good. With no terminal and no default, the answer is a usage error naming the
//! flag.

use crate::secret::Secret;
use inquire::validator::Validation;
use std::sync::Arc;

/// Why `init` stopped before writing.
#[derive(Debug)]
pub(super) enum Stop {
    /// Ctrl-C or Esc at a question.
    Cancelled,
    /// A missing or bad answer without a terminal, or a bad flag: exit 3.
    Usage(String),
    /// Anything else (the terminal failed).
    Failed(String),
}

/// A format check: `Err(why)` for a bad answer.
pub(super) type Check = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// One question.
pub(super) struct Question<'a> {
    /// The question in the terminal: "Upstox client id".
    pub prompt: &'a str,
    /// What it asks, for "no terminal to ask for the client id".
    pub what: &'a str,
    /// The flag that answers it (`--client-id`).
    pub flag: &'a str,
    /// The flag's value, if given.
    pub given: Option<String>,
    /// The answer when none is given (and what Enter takes).
    pub default: Option<String>,
    /// A line under the question.
    pub help: Option<&'a str>,
    /// The answer's format.
    pub check: Check,
}

/// Asks, or answers from the flags.
pub(super) struct Asker {
    /// stdin and stdout are terminals.
    pub interactive: bool,
    /// `--yes`: defaults are taken without asking.
    pub yes: bool,
}

fn stop(e: inquire::InquireError) -> Stop {
    use inquire::InquireError::*;
    match e {
        OperationCanceled | OperationInterrupted => Stop::Cancelled,
        other => Stop::Failed(format!("cannot ask in this terminal: {other}")),
    }
}

/// The check as inquire asks it: a bad answer is asked again under its reason, named by
/// what was asked (`Client id: may hold letters, ...`), as a flag's is (`--client-id "…":`).
fn validator(check: Check, what: &str) -> impl inquire::validator::StringValidator + 'static {
    let mut chars = what.chars();
    let what: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    move |s: &str| {
        Ok(match check(s.trim()) {
            Ok(()) => Validation::Valid,
            Err(why) => Validation::Invalid(format!("{what}: {why}").into()),
        })
    }
}

/// inquire's look: its colours unless `NO_COLOR`, and a plain `x` before a bad answer's
/// reason (its default `#` reads like a comment).
pub(super) fn style_prompts() {
    let config = inquire::ui::RenderConfig::default();
    let mark = inquire::ui::Styled::new("x");
    let mark = if std::env::var_os("NO_COLOR").is_some() {
        mark
    } else {
        mark.with_fg(inquire::ui::Color::LightRed)
    };
    let error = config.error_message.with_prefix(mark);
    inquire::set_global_render_config(config.with_error_message(error));
}

impl Asker {
    /// A plain answer.
    pub(super) fn text(&self, q: Question<'_>) -> Result<String, Stop> {
        if let Some(v) = q.given {
            let v = v.trim().to_string();
            return match (q.check)(&v) {
                Ok(()) => Ok(v),
                Err(why) => Err(Stop::Usage(format!("{} {v:?}: {why}", q.flag))),
            };
        }
        if let Some(d) = q.default.as_ref().filter(|_| self.yes) {
            return Ok(d.clone());
        }
        if !self.interactive {
            return Err(match &q.default {
                Some(d) => missing_or_default(q.what, q.flag, d),
                None => missing(q.what, q.flag),
            });
        }
        let mut p = inquire::Text::new(q.prompt).with_validator(validator(q.check.clone(), q.what));
        if let Some(d) = &q.default {
            p = p.with_default(d);
        }
        if let Some(h) = q.help {
            p = p.with_help_message(h);
        }
        p.prompt().map(|s| s.trim().to_string()).map_err(stop)
    }

    /// A secret: from the variable its flag names (never from argv), or asked with hidden
    /// input. Its value is never shown, not even in an error.
    pub(super) fn secret(&self, q: Question<'_>) -> Result<Secret, Stop> {
        if let Some(var) = q.given {
            let value = std::env::var(&var).unwrap_or_default();
            if value.trim().is_empty() {
                return Err(Stop::Usage(format!(
                    "{} {var}: the variable {var} is not set or empty; export the {} in it",
                    q.flag, q.what
                )));
            }
            return match (q.check)(value.trim()) {
                Ok(()) => Ok(Secret::new(value.trim())),
                Err(why) => Err(Stop::Usage(format!(
                    "{} {var}: the {} in {var} {why}",
                    q.flag, q.what
                ))),
            };
        }
        if !self.interactive {
            return Err(missing(q.what, q.flag));
        }
        let mut p = inquire::Password::new(q.prompt)
            .without_confirmation()
            .with_display_mode(inquire::PasswordDisplayMode::Hidden)
            .with_validator(validator(q.check.clone(), q.what));
        if let Some(h) = q.help {
            p = p.with_help_message(h);
        }
        p.prompt().map(|s| Secret::new(s.trim())).map_err(stop)
    }

    /// One of `options` (shown with their labels); `given` was already parsed by its flag.
    pub(super) fn select<T: Copy + PartialEq>(
        &self,
        prompt: &str,
        options: &[(T, String)],
        given: Option<T>,
        default: T,
        (what, flag): (&str, &str),
    ) -> Result<T, Stop> {
        if let Some(v) = given {
            return Ok(v);
        }
        if self.yes {
            return Ok(default);
        }
        if !self.interactive {
            let shown = options
                .iter()
                .find(|(v, _)| *v == default)
                .map(|(_, l)| l.split(" — ").next().unwrap_or(l).to_string())
                .unwrap_or_default();
            return Err(missing_or_default(what, flag, &shown));
        }
        let labels: Vec<String> = options.iter().map(|(_, l)| l.clone()).collect();
        let start = options.iter().position(|(v, _)| *v == default).unwrap_or(0);
        let chosen = inquire::Select::new(prompt, labels.clone())
            .with_starting_cursor(start)
            .with_page_size(options.len().max(1))
            .with_help_message("↑↓ to move, Enter to choose, Esc to cancel")
            // The answer line keeps the choice's name, not its explanation.
            .with_formatter(&|o| o.value.split(" — ").next().unwrap_or(o.value).to_string())
            .raw_prompt()
            .map_err(stop)?;
        Ok(options[chosen.index].0)
    }

    /// Yes or no; `--yes` (and no terminal) take `default`.
    pub(super) fn confirm(&self, prompt: &str, default: bool) -> Result<bool, Stop> {
        if self.yes || !self.interactive {
            return Ok(default);
        }
        inquire::Confirm::new(prompt)
            .with_default(default)
            .prompt()
            .map_err(stop)
    }
}

/// `no terminal to ask for the broker; pass --broker, or --yes to take the default (Upstox)`.
pub(super) fn missing_or_default(what: &str, flag: &str, default: &str) -> Stop {
    Stop::Usage(format!(
        "no terminal to ask for the {what}; pass {flag}, or --yes to take the default ({default})"
    ))
}

/// `no terminal to ask for the client id; pass --client-id`.
pub(super) fn missing(what: &str, flag: &str) -> Stop {
    Stop::Usage(format!("no terminal to ask for the {what}; pass {flag}"))
}
