//! The API's last answer about the current token, shared with every other reader of the
//! token through `<token file>.state` ([`crate::token::verdict`]): recorded after each
//! answer, adopted when another process stored a newer one, forgotten with the token.

use super::{Core, file_stamp};
use crate::schedule::Verdict;
use crate::token::verdict::{self, CheckResult, StoredVerdict};
use chrono::{DateTime, Utc};
use tracing::warn;

impl Core {
    /// What the API last said.
    pub fn verdict(&self) -> Verdict {
        Verdict::of(self.answer.as_ref())
    }

    /// The API's last answer about the current token, with its time and code.
    pub fn answer(&self) -> Option<&StoredVerdict> {
        self.answer.as_ref()
    }

    /// Forget what the API said (the token changed).
    pub(super) fn forget_answer(&mut self) {
        self.answer = None;
        self.last_check_at = None;
        self.last_check_result = None;
    }

    /// Record the API's answer about the current token at `at`, and share it in the
    /// `.state` file for every other reader of the token.
    pub(super) fn record_answer(
        &mut self,
        result: CheckResult,
        code: Option<String>,
        at: DateTime<Utc>,
    ) {
        let answer = StoredVerdict { at, result, code };
        if let Some(token) = &self.token {
            let path = &self.account.token.path;
            let written = verdict::write_verdict(path, &token.access_token, &answer);
            self.state_stamp = file_stamp(&verdict::state_path(path));
            self.note_state_problem(written.err());
        }
        self.answer = Some(answer);
    }

    /// Take a newer answer another process stored for the current token. `as_check`: it
    /// counts as this process's last check too, for the schedule (not for a token just read,
    /// which this process checks itself unless the answer was a rejection).
    pub(super) fn adopt_stored_answer(&mut self, as_check: bool) {
        let path = self.account.token.path.clone();
        self.state_stamp = file_stamp(&verdict::state_path(&path));
        let Some(token) = &self.token else { return };
        let stored = match verdict::read_verdict(&path, &token.access_token) {
            Ok(v) => v,
            Err(why) => return self.note_state_problem(Some(why)),
        };
        self.note_state_problem(None);
        let Some(stored) = stored else { return };
        if self.answer.as_ref().is_some_and(|a| a.at >= stored.at) {
            return;
        }
        if stored.result == CheckResult::Invalid
            && self
                .answer
                .as_ref()
                .is_none_or(|a| a.result == CheckResult::Valid)
        {
            let code = stored
                .code
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            warn!(account = %self.account.name, "Token invalid: Upstox rejected it{code} when another tokenwatch process checked it");
        }
        if as_check {
            self.last_check_at = Some(self.last_check_at.map_or(stored.at, |l| l.max(stored.at)));
        }
        self.last_check_result = Some(match (&stored.result, &stored.code) {
            (CheckResult::Valid, _) => "valid".into(),
            (CheckResult::Invalid, Some(code)) => format!("rejected ({code})"),
            (CheckResult::Invalid, None) => "rejected".into(),
        });
        self.answer = Some(stored);
    }

    /// Say a problem with the `.state` file once (and that it is gone, once).
    fn note_state_problem(&mut self, problem: Option<String>) {
        if problem == self.state_problem {
            return;
        }
        if let Some(why) = &problem {
            warn!(account = %self.account.name, "The shared verdict file is not usable: {why}");
        }
        self.state_problem = problem;
    }

    /// The `.state` file changed since this process last read or wrote it.
    pub(super) fn state_file_changed(&self) -> bool {
        file_stamp(&verdict::state_path(&self.account.token.path)) != self.state_stamp
    }

    /// Remove the `.state` file: a verdict about the token a new one replaced counts for
    /// nobody.
    pub(super) fn clear_answer_file(&mut self) {
        let cleared = verdict::clear_verdict(&self.account.token.path);
        self.state_stamp = file_stamp(&verdict::state_path(&self.account.token.path));
        self.note_state_problem(cleared.err());
    }
}
