//! How long one validation round takes against the embedded simulator on loopback: the
//! profile call, the classification and the bookkeeping of `Core::validate`.
//!
//! Run: `cargo bench --bench validation`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;
use tokenwatch::brokers::upstox::sim::{SimConfig, Simulator};
use tokenwatch::clock::SystemClock;
use tokenwatch::config::{AccountConfig, MonitorConfig, RenewConfig, TokenConfig, UpstoxConfig};
use tokenwatch::token::store::TokenStore;
use tokenwatch::token::{ExpirySource, Token, TokenFileFormat};
use tokenwatch::worker::{CheckOutcome, Core};

fn validation_round(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut core, _server) = rt.block_on(async {
        let sim = Simulator::new(SimConfig::default(), Arc::new(SystemClock));
        let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let issued = sim.issue_token();
        let token = Token {
            broker: Default::default(),
            access_token: issued.access_token,
            token_type: "Bearer".into(),
            extended_token: None,
            user_id: Some("AB1234".into()),
            user_name: None,
            email: None,
            issued_at: Some(issued.issued_at),
            expires_at: issued.expires_at,
            expiry_source: ExpirySource::ExpiresAt,
            obtained_via: None,
            refresh_token: None,
            format: TokenFileFormat::Format1,
        };
        let path = dir.path().join("upstox_token.json");
        TokenStore::new(path.clone(), []).write(&token).unwrap();
        let account = AccountConfig {
            broker: Default::default(),
            kite: Default::default(),
            fyers: Default::default(),
            angel: Default::default(),
            dhan: Default::default(),
            name: "default".into(),
            upstox: UpstoxConfig {
                api_base: server.base_url.clone(),
                ..UpstoxConfig::default()
            },
            token: TokenConfig {
                path,
                backups: vec![],
                env_file: None,
                on_change: vec![],
            },
            renew: RenewConfig::default(),
        };
        let core = Core::new(account, MonitorConfig::default(), Arc::new(SystemClock)).unwrap();
        (core, server)
    });
    c.bench_function("validation round (profile on loopback simulator)", |b| {
        b.iter(|| {
            let v = rt.block_on(core.check());
            assert!(matches!(v, CheckOutcome::Valid(_)));
        })
    });
}

criterion_group!(benches, validation_round);
criterion_main!(benches);
