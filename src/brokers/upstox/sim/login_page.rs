//! The simulator's login and consent page, shown by the authorization dialog when logins are
//! not approved automatically: Approve and Deny post to `/v2/login/authorization/decision`.

use super::SimConfig;
use std::collections::HashMap;

/// Minimal HTML escaping for values echoed into the login page.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn login_page(config: &SimConfig, params: &HashMap<String, String>) -> String {
    let hidden: String = ["response_type", "client_id", "redirect_uri", "state"]
        .iter()
        .filter_map(|name| {
            params.get(*name).map(|value| {
                format!(
                    r#"<input type="hidden" name="{name}" value="{}">"#,
                    html_escape(value)
                )
            })
        })
        .collect::<Vec<_>>()
        .join("\n      ");
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Upstox login (tokenwatch simulator)</title>
<style>
  body {{ font-family: system-ui, sans-serif; background: #f4f1fb; margin: 0; }}
  .card {{ max-width: 26rem; margin: 4rem auto; background: #fff; border-radius: 12px;
          padding: 2rem; box-shadow: 0 4px 24px rgba(0,0,0,.08); }}
  h1 {{ color: #5a298b; font-size: 1.4rem; margin-top: 0; }}
  .note {{ background: #fff6d6; border: 1px solid #f0d98a; padding: .6rem .8rem;
          border-radius: 6px; font-size: .9rem; }}
  dl {{ display: grid; grid-template-columns: auto 1fr; gap: .3rem 1rem; }}
  dt {{ color: #666; }}
  .buttons {{ display: flex; gap: 1rem; margin-top: 1.5rem; }}
  button {{ flex: 1; padding: .8rem; border-radius: 8px; border: 0; font-size: 1rem;
           cursor: pointer; }}
  .approve {{ background: #5a298b; color: #fff; }}
  .deny {{ background: #eee; color: #333; }}
</style>
</head>
<body>
  <div class="card">
    <h1>Log in to Upstox</h1>
    <p class="note">This is the <strong>tokenwatch simulator</strong>, not the real Upstox.
      No password is needed and no real account is involved.</p>
    <p>The app <strong>{client_id}</strong> asks for access to your account:</p>
    <dl>
      <dt>User</dt><dd>{user_name} ({user_id})</dd>
      <dt>E-mail</dt><dd>{email}</dd>
      <dt>Redirect</dt><dd>{redirect_uri}</dd>
    </dl>
    <form method="post" action="/v2/login/authorization/decision">
      {hidden}
      <div class="buttons">
        <button class="approve" type="submit" name="decision" value="approve">Approve</button>
        <button class="deny" type="submit" name="decision" value="deny">Deny</button>
      </div>
    </form>
  </div>
</body>
</html>
"#,
        client_id = html_escape(&config.client_id),
        user_name = html_escape(&config.user_name),
        user_id = html_escape(&config.user_id),
        email = html_escape(&config.email),
        redirect_uri = html_escape(&config.redirect_uri),
    )
}
