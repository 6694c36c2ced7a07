//! The configuration's layers before they are merged: the file, the environment variables
//! (`UPSTOX_*`, `KITE_*`, ..., `TOKENWATCH__SECTION__KEY`) and the older manager's credentials
//! file, each a figment provider checked on its own, and figment's errors in plain words.

use super::*;

/// A configuration layer: named values from one file, variable or flag.
pub(super) struct Layer {
    pub(super) origin: String,
    pub(super) dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.origin.clone())
    }
    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Map::from([(Profile::Default, self.dict.clone())]))
    }
}

impl Layer {
    /// A layer setting one dotted key.
    pub(super) fn single(origin: String, key_path: &[String], value: Value) -> Layer {
        let mut value = value;
        for k in key_path.iter().skip(1).rev() {
            value = Value::from(Dict::from([(k.clone(), value)]));
        }
        Layer {
            origin,
            dict: Dict::from([(key_path[0].clone(), value)]),
        }
    }

    /// Check this layer on its own, so its errors name it.
    pub(super) fn check(&self) -> Result<RawConfig, ConfigError> {
        Figment::from(self)
            .extract_lossy::<RawConfig>()
            .map_err(|e| figment_error(e, &self.origin))
    }
}

/// Turn a figment error into one that names the origin, key and expectation, and never
/// quotes a secret value.
pub(super) fn figment_error(e: figment::Error, fallback_origin: &str) -> ConfigError {
    use figment::error::Kind;
    let origin = e
        .metadata
        .as_ref()
        .map(|m| m.name.to_string())
        .unwrap_or_else(|| fallback_origin.to_owned());
    let mut key = e.path.join(".");
    let secret_key = ["client_secret", "api_key", "access_token"]
        .iter()
        .any(|s| key.ends_with(s));
    let message = match &e.kind {
        Kind::UnknownField(field, expected) => {
            if e.path.last() != Some(field) {
                key = if key.is_empty() {
                    field.clone()
                } else {
                    format!("{key}.{field}")
                };
            }
            if expected.is_empty() {
                "unknown key".to_string()
            } else {
                format!("unknown key; expected one of: {}", expected.join(", "))
            }
        }
        Kind::UnknownVariant(v, expected) => {
            format!(
                "unknown value \"{v}\"; expected one of: {}",
                expected.join(", ")
            )
        }
        Kind::InvalidType(_, expected) if secret_key => format!("expected {expected}"),
        Kind::InvalidType(actual, expected) => {
            format!("expected {}, found {actual}", plain(expected))
        }
        Kind::InvalidValue(_, expected) if secret_key => {
            format!("invalid value; expected {expected}")
        }
        Kind::InvalidValue(actual, expected) => {
            format!("invalid value {actual}; expected {expected}")
        }
        Kind::Message(m) if secret_key => {
            if m.contains("expected") {
                m.clone()
            } else {
                "invalid value".into()
            }
        }
        Kind::Message(m) => m.clone(),
        other => other.to_string(),
    };
    ConfigError {
        origin,
        key: (!key.is_empty()).then_some(key),
        message,
    }
}

/// serde's type names in words a user knows.
pub(super) fn plain(expected: &str) -> &str {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize" => {
            "a whole number"
        }
        "a boolean" | "bool" => "true or false",
        other => other,
    }
}

/// Read the config file into a layer. Empty files and `key:` with no value are "not set".
pub(super) fn file_layer(path: &Path) -> Result<Layer, ConfigError> {
    let origin = format!("config file {}", path.display());
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(&origin, None, format!("cannot read it: {e}")))?;
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text)
        .map_err(|e| ConfigError::new(&origin, None, format!("it is not valid YAML: {e}")))?;
    let dict = match strip_nulls(yaml) {
        None => Dict::new(),
        Some(v @ serde_yaml::Value::Mapping(_)) => {
            let value =
                Value::serialize(&v).map_err(|e| ConfigError::new(&origin, None, e.to_string()))?;
            value.into_dict().unwrap_or_default()
        }
        Some(_) => {
            return Err(ConfigError::new(
                &origin,
                None,
                "expected sections such as `upstox:` and `token:` at the top level",
            ));
        }
    };
    Ok(Layer { origin, dict })
}

/// YAML `key:` with nothing after it means "not set here", not "null".
pub(super) fn strip_nulls(v: serde_yaml::Value) -> Option<serde_yaml::Value> {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => None,
        Y::Mapping(m) => Some(Y::Mapping(
            m.into_iter()
                .filter_map(|(k, v)| strip_nulls(v).map(|v| (k, v)))
                .collect(),
        )),
        Y::Tagged(t) => strip_nulls(t.value),
        other => Some(other),
    }
}

/// One layer per environment variable that sets a key, highest last.
pub(super) fn env_layers(env: &Env) -> Result<Vec<Layer>, ConfigError> {
    let mut layers = Vec::new();
    let named = [
        ("UPSTOX_CLIENT_ID", "upstox", "client_id"),
        ("UPSTOX_CLIENT_SECRET", "upstox", "client_secret"),
        ("UPSTOX_REDIRECT_URI", "upstox", "redirect_uri"),
        ("KITE_API_KEY", "kite", "api_key"),
        ("KITE_API_SECRET", "kite", "api_secret"),
        ("KITE_REDIRECT_URI", "kite", "redirect_uri"),
        ("FYERS_CLIENT_ID", "fyers", "client_id"),
        ("FYERS_SECRET_KEY", "fyers", "secret_key"),
        ("FYERS_PIN", "fyers", "pin"),
        ("FYERS_REDIRECT_URI", "fyers", "redirect_uri"),
        ("ANGEL_API_KEY", "angel", "api_key"),
        ("ANGEL_CLIENT_CODE", "angel", "client_code"),
        ("ANGEL_PIN", "angel", "pin"),
        ("ANGEL_TOTP_SECRET", "angel", "totp_secret"),
        ("ANGEL_TOTP_SECRET_FILE", "angel", "totp_secret_file"),
        ("DHAN_CLIENT_ID", "dhan", "client_id"),
        ("DHAN_API_KEY", "dhan", "api_key"),
        ("DHAN_API_SECRET", "dhan", "api_secret"),
        ("DHAN_PIN", "dhan", "pin"),
        ("DHAN_TOTP_SECRET", "dhan", "totp_secret"),
        ("DHAN_REDIRECT_URI", "dhan", "redirect_uri"),
    ];
    for (var, section, key) in named {
        if let Some(v) = env.get(var).filter(|v| !v.trim().is_empty()) {
            let path = [section.to_string(), key.to_string()];
            layers.push(Layer::single(
                format!("environment variable {var}"),
                &path,
                Value::from(v.clone()),
            ));
        }
    }
    for (var, v) in env.range("TOKENWATCH__".to_string()..) {
        let Some(rest) = var.strip_prefix("TOKENWATCH__") else {
            break;
        };
        let origin = format!("environment variable {var}");
        let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        if path.iter().any(|s| s.is_empty()) {
            return Err(ConfigError::new(
                origin,
                None,
                "expected TOKENWATCH__SECTION__KEY, like TOKENWATCH__MONITOR__CHECK_INTERVAL",
            ));
        }
        if v.trim().is_empty() {
            // An empty TOKENWATCH__SERVER__LISTEN turns the HTTP API off (over a config
            // file's address); other empty variables are ignored.
            if path == ["server", "listen"] {
                layers.push(Layer::single(origin, &path, Value::from("off")));
            }
            continue;
        }
        let value = if v.trim_start().starts_with('[') {
            let list: Vec<String> = serde_json::from_str(v).map_err(|_| {
                ConfigError::new(
                    &origin,
                    Some(&path.join(".")),
                    "a value starting with [ must be a JSON list of strings, like [\"systemctl\",\"restart\",\"engine\"]",
                )
            })?;
            Value::from(list)
        } else {
            Value::from(v.clone())
        };
        layers.push(Layer::single(origin, &path, value));
    }
    Ok(layers)
}

/// The older Python manager's credentials: `api_key`|`client_id`, `api_secret`|`client_secret`,
/// `redirect_uri`. Other keys in that file are ignored.
pub(super) fn legacy_layer(path: &Path) -> Result<Option<Layer>, ConfigError> {
    #[derive(serde::Deserialize)]
    struct Legacy {
        #[serde(alias = "api_key")]
        client_id: Option<serde_json::Value>,
        #[serde(alias = "api_secret")]
        client_secret: Option<serde_json::Value>,
        redirect_uri: Option<String>,
    }
    let origin = format!("legacy credentials file {}", path.display());
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ConfigError::new(
                origin,
                None,
                format!("cannot read it: {e}"),
            ));
        }
    };
    let legacy: Legacy = serde_json::from_str(&text).map_err(|e| {
        ConfigError::new(
            &origin,
            None,
            format!(
                "expected a JSON object with api_key, api_secret and redirect_uri (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    let scalar = |v: Option<serde_json::Value>, key: &str| -> Result<Option<String>, ConfigError> {
        match v {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(ConfigError::new(&origin, Some(key), "expected a string")),
        }
    };
    let mut upstox = Dict::new();
    if let Some(v) = scalar(legacy.client_id, "api_key")? {
        upstox.insert("client_id".into(), Value::from(v));
    }
    if let Some(v) = scalar(legacy.client_secret, "api_secret")? {
        upstox.insert("client_secret".into(), Value::from(v));
    }
    if let Some(v) = legacy.redirect_uri.filter(|v| !v.trim().is_empty()) {
        upstox.insert("redirect_uri".into(), Value::from(v));
    }
    Ok(Some(Layer {
        origin,
        dict: Dict::from([("upstox".to_string(), Value::from(upstox))]),
    }))
}
