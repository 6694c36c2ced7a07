//! Renewal rounds: by `renew.command` (strategy command) and through the broker's API
//! (strategies totp and refresh-token), each a future the worker or `refresh` runs while it
//! holds the renewal lock.

use super::record::Counted;
use super::*;

impl Core {
    /// Log the start of a renewal round, as engines' operators know it.
    pub fn log_renewal_start(&self) {
        let name = &self.account.name;
        let now = self.clock.now();
        match self.token.as_ref() {
            Some(t) if t.expires_at > now => info!(
                account = %name,
                "Token expires in {}, attempting refresh...",
                human(t.expires_at - now)
            ),
            Some(_) => info!(account = %name, "Token expired, attempting refresh..."),
            None => info!(account = %name, "No token, attempting refresh..."),
        }
    }

    /// A renewal round of this account's strategy: `renew.command` (strategy command), or
    /// the broker's API (strategies totp and refresh-token). Hold the renewal lock meanwhile.
    pub fn renew_call(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = RenewResult> + Send + 'static>> {
        match self.account.renew.strategy {
            Strategy::Totp => Box::pin(self.broker_renew_call(Headless::Totp)),
            Strategy::RefreshToken => Box::pin(self.broker_renew_call(Headless::RefreshToken)),
            _ => Box::pin(self.command_renew_call()),
        }
    }

    /// A login through the broker's API with the PIN and a TOTP code, whatever the strategy
    /// (for brokers and accounts that log in without a browser).
    pub fn headless_login_call(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = RenewResult> + Send + 'static>> {
        Box::pin(self.broker_renew_call(Headless::Totp))
    }

    /// Whether this account logs in through the broker's API (PIN and TOTP), not a browser.
    pub fn logs_in_headless(&self) -> bool {
        self.account
            .broker
            .logs_in_headless(self.account.renew.strategy)
    }

    /// Strategies totp and refresh-token: ask the broker's API for a new token, once per
    /// round, then check it with the profile call (that check is retried on transient
    /// errors). The request itself is never repeated at once: it may have reached the broker
    /// (a PIN sent twice, a refresh token spent, a RenewToken that ended the old token), so a
    /// passing failure waits for the next round, and a refusal (a wrong PIN, a dead refresh
    /// token) for the user.
    fn broker_renew_call(
        &self,
        how: Headless,
    ) -> impl Future<Output = RenewResult> + Send + 'static {
        let client = self.counted();
        let current = self.token.as_ref().map(|t| t.access_token.clone());
        let refresh = self.store.read_refresh();
        let clock = self.clock.clone();
        let policy = self.retry_policy();
        let name = self.account.name.clone();
        async move {
            renew_by_broker(
                &client,
                how,
                current.as_ref(),
                refresh.as_ref(),
                clock.as_ref(),
                policy,
                &name,
            )
            .await
            .map_err(|e| {
                if e.is_transient() {
                    error!(account = %name, "Refresh failed: {e}; the next round tries again");
                    RenewFailure::from(format!("failed, tried again at the next round ({e})"))
                } else if matches!(e, ApiError::Rejected { status: 0, .. }) {
                    // Nothing was sent (a key the configuration lacks): the message says what
                    // to set, and a round waits until it is.
                    error!(account = %name, "Refresh not sent: {e}");
                    RenewFailure {
                        why: e.to_string(),
                        refused: true,
                    }
                } else {
                    error!(account = %name, "Refresh refused, not tried again: {e}");
                    RenewFailure {
                        why: format!(
                            "refused, not tried again until the configuration changes or you renew by hand ({e})"
                        ),
                        refused: true,
                    }
                }
            })
        }
    }

    /// Strategy command: run `renew.command`, read the token it prints and verify it with
    /// the profile API, up to `monitor.max_retries` times.
    fn command_renew_call(&self) -> impl Future<Output = RenewResult> + Send + 'static {
        let argv = self.account.renew.command.clone();
        let client = self.counted();
        let clock = self.clock.clone();
        let policy = self.retry_policy();
        let name = self.account.name.clone();
        async move {
            let max = policy.attempts.max(1);
            let (result, n) = retry_counted(policy, &name, "Refresh", || {
                fetch_and_verify(&argv, &client, clock.as_ref())
            })
            .await;
            result.map_err(|e| {
                // The retried attempts are logged by the retry; the last one is logged here.
                warn!(account = %name, "Refresh attempt {n}/{max} failed: {e}");
                error!(account = %name, "All refresh attempts failed, manual intervention required");
                RenewFailure::from(format!("all attempts failed ({e})"))
            })
        }
    }
}

/// Why one `renew.command` attempt failed.
#[derive(Debug, Clone, thiserror::Error)]
enum RenewError {
    #[error("{0}")]
    Api(ApiError),
    #[error("{0}")]
    Other(String),
}

impl crate::retry::Transient for RenewError {
    /// Every failure is tried again: a command that failed once may work the next time.
    fn is_transient(&self) -> bool {
        true
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            RenewError::Api(e) => e.retry_after(),
            RenewError::Other(_) => None,
        }
    }
}

/// One headless renewal through the broker's API: one request for the new token, then the
/// profile check of it (retried on transient errors). A new token the broker then rejects is
/// a refusal, not a dead current token; one whose check cannot be made is stored all the
/// same (the request that gave it may have spent the old token), and the next check tells.
async fn renew_by_broker(
    client: &Counted,
    how: Headless,
    current: Option<&Secret>,
    refresh_token: Option<&Secret>,
    clock: &dyn Clock,
    policy: RetryPolicy,
    name: &str,
) -> Result<Token, ApiError> {
    let broker = client.broker();
    let now = clock.now();
    let with = Renewing {
        current,
        refresh_token,
        now,
    };
    let session = client.renew(how, with).await?;
    let via = match how {
        Headless::Totp => "totp",
        Headless::RefreshToken => "refresh-token",
    };
    let refused = |message: String| ApiError::Rejected {
        broker,
        status: 0,
        code: None,
        message,
    };
    let mut token = crate::brokers::session_token(broker, session, now, via).ok_or_else(|| {
        refused(format!(
            "{} gave a token without saying when it ends",
            broker.display_name()
        ))
    })?;
    if token.expires_at <= now {
        return Err(refused(format!(
            "{} gave a token that has already expired",
            broker.display_name()
        )));
    }
    let (checked, _) = retry_counted(policy, name, "Check of the new token", || {
        client.profile(&token.access_token)
    })
    .await;
    match checked {
        Ok(profile) => {
            token.user_id = token.user_id.or(profile.user_id);
            token.user_name = token.user_name.or(profile.user_name);
            token.email = token.email.or(profile.email);
        }
        Err(e @ ApiError::Invalid { .. }) => {
            return Err(refused(format!("the new token was rejected: {e}")));
        }
        Err(e) => {
            warn!(account = %name, "Could not check the new token yet ({e}); storing it, the next check tells");
        }
    }
    Ok(token)
}

/// Run `renew.command`, read the token it prints, and check it with the profile API.
async fn fetch_and_verify(
    argv: &[String],
    client: &Counted,
    clock: &dyn Clock,
) -> Result<Token, RenewError> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| RenewError::Other("renew.command is empty".into()))?;
    let (program, args) = (program.clone(), args.to_vec());
    // Like every command tokenwatch runs, it does not inherit the client secret or API key.
    let hidden = crate::process::hidden_from_hooks();
    let run = tokio::task::spawn_blocking(move || {
        let hidden: Vec<&str> = hidden.iter().map(String::as_str).collect();
        crate::process::run(&program, &args, &[], &hidden, RENEW_COMMAND_TIMEOUT)
    })
    .await
    .map_err(|e| RenewError::Other(format!("renew.command stopped: {e}")))?;
    let out = match run {
        Run::Exited(out) => out,
        Run::TimedOut => {
            return Err(RenewError::Other(format!(
                "renew.command did not finish within {} and was stopped",
                human(RENEW_COMMAND_TIMEOUT)
            )));
        }
        Run::NotStarted(why) => {
            return Err(RenewError::Other(format!(
                "cannot run renew.command: {why}"
            )));
        }
    };
    if !out.status.success() {
        return Err(RenewError::Other(format!(
            "renew.command exited with {}{}",
            out.status,
            stderr_excerpt(&out.stderr)
        )));
    }
    let now = clock.now();
    // A token that names no broker is this account's broker's (its expiry rule applies).
    let mut token = parse_token_as(&out.stdout, Some(now), client.broker()).map_err(|why| {
        RenewError::Other(format!("renew.command printed no usable token: {why}"))
    })?;
    if token.expires_at <= now {
        return Err(RenewError::Other(
            "renew.command printed a token that has already expired".into(),
        ));
    }
    let profile = client
        .profile(&token.access_token)
        .await
        .map_err(|e| match e {
            ApiError::Invalid { .. } => RenewError::Other(format!(
                "the token from renew.command was rejected by {}: {e}",
                client.broker().display_name()
            )),
            other => RenewError::Api(other),
        })?;
    token.issued_at = token.issued_at.or(Some(now));
    token.user_id = token.user_id.or(profile.user_id.clone());
    token.user_name = token.user_name.or(profile.user_name.clone());
    token.email = token.email.or(profile.email.clone());
    token.obtained_via = Some("command".into());
    token.format = crate::token::TokenFileFormat::Format1;
    Ok(token)
}
