//! The process exit codes shared across the program (see docs/commands.md, Exit codes). A low module:
//! it depends on nothing, so the commands, the dashboard and `main` can all name the same
//! codes. `status` computes its own Nagios-style codes (0–3) from the report.

/// A command-line usage error: 3 ("unknown" to Nagios), never 2, which `status` uses for a
/// dead token.
pub const EXIT_USAGE: u8 = 3;

/// `tokenwatch token` found no valid token (missing, unreadable or expired).
pub const EXIT_NO_TOKEN: u8 = 2;

/// A configuration error (`EX_CONFIG` from sysexits.h).
pub const EXIT_CONFIG: u8 = 78;
