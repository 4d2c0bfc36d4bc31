//! Environment overrides: precedence (builder, then env, then default) and malformed values.
//! One test function only: it changes the process environment, which must not race with other
//! threads reading it.
#![allow(unsafe_code)]

use std::time::Duration;

use xoscar_pool::{
    ConfigError, ENV_CONNECT_TIMEOUT, ENV_HEARTBEAT_INTERVAL, ENV_HEARTBEAT_TIMEOUT,
    ENV_IDLE_TIMEOUT, ENV_SERVER_IDLE_TIMEOUT, MAX_DURATION, Pool, PoolConfig, ServerConfig,
};

fn set(var: &str, value: &str) {
    // SAFETY: this binary runs a single test on a single thread, so nothing reads the
    // environment concurrently.
    unsafe { std::env::set_var(var, value) }
}

fn unset(var: &str) {
    // SAFETY: as in `set`.
    unsafe { std::env::remove_var(var) }
}

#[test]
fn environment_overrides_follow_precedence_and_bad_values_name_the_variable() {
    let all = [
        ENV_IDLE_TIMEOUT,
        ENV_HEARTBEAT_INTERVAL,
        ENV_HEARTBEAT_TIMEOUT,
        ENV_CONNECT_TIMEOUT,
        ENV_SERVER_IDLE_TIMEOUT,
    ];
    for var in all {
        unset(var);
    }

    // Defaults.
    let resolved = PoolConfig::default().resolve().unwrap();
    assert_eq!(resolved.idle_timeout(), Some(Duration::from_secs(30)));
    assert_eq!(resolved.heartbeat_interval(), Duration::from_secs(5));
    assert_eq!(resolved.heartbeat_timeout(), Duration::from_secs(15));
    assert_eq!(resolved.transport().get_connect_timeout(), Duration::from_secs(10));
    assert_eq!(resolved.reap_interval(), Some(Duration::from_secs(3)));
    assert_eq!(
        ServerConfig::default().resolve().unwrap().idle_timeout(),
        Some(Duration::from_secs(120))
    );

    // The environment beats the default, fractions allowed.
    set(ENV_IDLE_TIMEOUT, "0.25");
    set(ENV_HEARTBEAT_INTERVAL, "2");
    set(ENV_HEARTBEAT_TIMEOUT, " 7.5 ");
    set(ENV_CONNECT_TIMEOUT, "3");
    set(ENV_SERVER_IDLE_TIMEOUT, "1.5");
    let resolved = PoolConfig::default().resolve().unwrap();
    assert_eq!(resolved.idle_timeout(), Some(Duration::from_millis(250)));
    assert_eq!(resolved.reap_interval(), Some(Duration::from_millis(50)), "max(T/10, 50 ms)");
    assert_eq!(resolved.heartbeat_interval(), Duration::from_secs(2));
    assert_eq!(resolved.heartbeat_timeout(), Duration::from_millis(7500));
    assert_eq!(resolved.transport().get_connect_timeout(), Duration::from_secs(3));
    assert_eq!(
        ServerConfig::default().resolve().unwrap().idle_timeout(),
        Some(Duration::from_millis(1500))
    );

    // An explicit builder setting beats the environment.
    let resolved = PoolConfig::default().idle_timeout(Duration::from_secs(9)).resolve().unwrap();
    assert_eq!(resolved.idle_timeout(), Some(Duration::from_secs(9)));
    let server = ServerConfig::default().idle_timeout(Duration::from_secs(4)).resolve().unwrap();
    assert_eq!(server.idle_timeout(), Some(Duration::from_secs(4)));

    // Zero turns reaping off.
    set(ENV_IDLE_TIMEOUT, "0");
    assert_eq!(PoolConfig::default().resolve().unwrap().idle_timeout(), None);
    set(ENV_SERVER_IDLE_TIMEOUT, "0");
    assert_eq!(ServerConfig::default().resolve().unwrap().idle_timeout(), None);

    // Malformed values are errors naming the variable, at start-up.
    // (1e19 fits a Duration but would overflow the clock arithmetic: over the 100-year cap.)
    for bad in ["ten", "-1", "NaN", "inf", "", "1e400", "5s", "1e19"] {
        set(ENV_IDLE_TIMEOUT, bad);
        let error = Pool::new(PoolConfig::default()).unwrap_err();
        assert!(
            matches!(&error, ConfigError::InvalidEnv { var, value, .. } if *var == ENV_IDLE_TIMEOUT && value == bad),
            "{bad:?}: {error}"
        );
        assert!(error.to_string().contains(ENV_IDLE_TIMEOUT), "{error}");
    }
    unset(ENV_IDLE_TIMEOUT);
    set(ENV_SERVER_IDLE_TIMEOUT, "soon");
    let error = ServerConfig::default().resolve().unwrap_err();
    assert!(matches!(error, ConfigError::InvalidEnv { var, .. } if var == ENV_SERVER_IDLE_TIMEOUT));

    // A heartbeat of zero would never ping: refused, blaming its source.
    set(ENV_HEARTBEAT_INTERVAL, "0");
    let error = PoolConfig::default().resolve().unwrap_err();
    assert!(
        matches!(error, ConfigError::InvalidEnv { var, .. } if var == ENV_HEARTBEAT_INTERVAL),
        "{error}"
    );
    unset(ENV_HEARTBEAT_INTERVAL);
    let error = PoolConfig::default().heartbeat_timeout(Duration::ZERO).resolve().unwrap_err();
    assert!(matches!(error, ConfigError::Invalid { setting: "heartbeat_timeout", .. }), "{error}");

    // Durations past MAX_DURATION are refused when resolved, not left to panic in a timer.
    unset(ENV_SERVER_IDLE_TIMEOUT);
    let error = PoolConfig::default().heartbeat_interval(Duration::MAX).resolve().unwrap_err();
    assert!(matches!(error, ConfigError::Invalid { setting: "heartbeat_interval", .. }), "{error}");
    let error = PoolConfig::default().idle_timeout(Duration::MAX).resolve().unwrap_err();
    assert!(matches!(error, ConfigError::Invalid { setting: "idle_timeout", .. }), "{error}");
    for server in [
        ServerConfig::default().idle_timeout(Duration::MAX),
        ServerConfig::default().drain_timeout(Duration::MAX),
        ServerConfig::default().keepalive_interval(Duration::MAX),
        ServerConfig::default().close_linger(Duration::MAX),
    ] {
        assert!(matches!(server.resolve(), Err(ConfigError::Invalid { .. })), "{server:?}");
    }
    // Zero limits and zero server durations would stall or spin: refused, naming the setting.
    let error = PoolConfig::default().max_queued_bytes(0).resolve().unwrap_err();
    assert!(matches!(error, ConfigError::Invalid { setting: "max_queued_bytes", .. }), "{error}");
    for (server, setting) in [
        (ServerConfig::default().max_in_flight(0), "max_in_flight"),
        (ServerConfig::default().max_buffered_bytes(0), "max_buffered_bytes"),
        (ServerConfig::default().keepalive_interval(Duration::ZERO), "keepalive_interval"),
        (ServerConfig::default().drain_timeout(Duration::ZERO), "drain_timeout"),
    ] {
        let error = server.resolve().unwrap_err();
        assert!(
            matches!(error, ConfigError::Invalid { setting: s, .. } if s == setting),
            "{error}"
        );
    }
    let longest = PoolConfig::default().idle_timeout(MAX_DURATION).resolve().unwrap();
    assert_eq!(longest.idle_timeout(), Some(MAX_DURATION));

    for var in all {
        unset(var);
    }

    // XOSCAR_AUTH_TOKEN: the caller's secret unless the transport sets one; a short one is
    // an error naming the variable and never showing the value.
    use xoscar_pool::ENV_AUTH_TOKEN;
    use xoscar_transport::{AuthToken, TransportConfig};
    assert!(PoolConfig::default().resolve().unwrap().transport().get_auth_token().is_none());
    set(ENV_AUTH_TOKEN, "from-the-environment-0123");
    let from_env = AuthToken::new("from-the-environment-0123").unwrap();
    let resolved = PoolConfig::default().resolve().unwrap();
    assert_eq!(resolved.transport().get_auth_token(), Some(&from_env));
    let own = AuthToken::new("set-by-the-builder-0123").unwrap();
    let explicit = TransportConfig::default().auth_token(Some(own.clone()));
    let resolved = PoolConfig::default().transport(explicit).resolve().unwrap();
    assert_eq!(resolved.transport().get_auth_token(), Some(&own));
    set(ENV_AUTH_TOKEN, "short");
    let error = PoolConfig::default().resolve().unwrap_err();
    assert!(
        matches!(&error, ConfigError::InvalidEnv { var, value, .. } if *var == ENV_AUTH_TOKEN && !value.contains("short")),
        "{error}"
    );
    unset(ENV_AUTH_TOKEN);
}
