//! The simulator's login page, shown by `GET /connect/login` when logins are not approved
//! automatically: Approve and Deny post to the simulator-only `POST /connect/decision`.

use super::SimConfig;

/// Minimal HTML escaping for values echoed into the page.
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

/// The page for an app's login; `redirect_params` travels on in a hidden field.
pub(super) fn login_page(config: &SimConfig, redirect_params: Option<&str>) -> String {
    let hidden = format!(
        r#"<input type="hidden" name="api_key" value="{}">
      <input type="hidden" name="redirect_params" value="{}">"#,
        html_escape(&config.api_key),
        html_escape(redirect_params.unwrap_or("")),
    );
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kite login (tokenwatch simulator)</title>
<style>
  body {{ font-family: system-ui, sans-serif; background: #f6f6f6; margin: 0; }}
  .card {{ max-width: 26rem; margin: 4rem auto; background: #fff; border-radius: 8px;
          padding: 2rem; box-shadow: 0 4px 24px rgba(0,0,0,.08); }}
  h1 {{ color: #387ed1; font-size: 1.4rem; margin-top: 0; }}
  .note {{ background: #fff6d6; border: 1px solid #f0d98a; padding: .6rem .8rem;
          border-radius: 6px; font-size: .9rem; }}
  dl {{ display: grid; grid-template-columns: auto 1fr; gap: .3rem 1rem; }}
  dt {{ color: #666; }}
  .buttons {{ display: flex; gap: 1rem; margin-top: 1.5rem; }}
  button {{ flex: 1; padding: .8rem; border-radius: 6px; border: 0; font-size: 1rem;
           cursor: pointer; }}
  .approve {{ background: #ff5722; color: #fff; }}
  .deny {{ background: #eee; color: #333; }}
</style>
</head>
<body>
  <div class="card">
    <h1>Log in to Kite</h1>
    <p class="note">This is the <strong>tokenwatch simulator</strong>, not the real Zerodha Kite.
      No password is needed and no real account is involved.</p>
    <p>The app <strong>{api_key}</strong> asks to log in to your account:</p>
    <dl>
      <dt>User</dt><dd>{user_name} ({user_id})</dd>
      <dt>E-mail</dt><dd>{email}</dd>
      <dt>Redirect</dt><dd>{redirect_url}</dd>
    </dl>
    <form method="post" action="/connect/decision">
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
        api_key = html_escape(&config.api_key),
        user_name = html_escape(&config.user_name),
        user_id = html_escape(&config.user_id),
        email = html_escape(&config.email),
        redirect_url = html_escape(&config.redirect_url),
    )
}
