//! Fleet mode against a real `redis-server` and the mock API with rotation and reuse
//! detection (1 s tokens): many clients, in this process and in child processes, share one
//! rotating grant and one rate limit. See `docs/fleet.md`.

#[path = "support/redis_server.rs"]
mod redis_server;

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use authed::{Client, ErrorKind, RedisStore, config::TokenStoreConfig, mock::MockApi};
use redis_server::RedisServer;
use tokio::time::Instant;

/// The fleet tests measure token requests and waits: they run one at a time, so that they do
/// not starve each other of the CPU.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

const TTL: Duration = Duration::from_secs(1);
const PAUSE: Duration = Duration::from_millis(25);

#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    store_errors: usize,
    invalid_grant: usize,
    other: usize,
}

/// Sends `GET /v1/me` every [`PAUSE`] until `until`, counting what the user would see.
async fn work(client: &Client, until: Instant) -> Tally {
    work_on(client, "/v1/me", until).await
}

/// Sends `GET <path>` every [`PAUSE`] until `until`, counting what the user would see.
async fn work_on(client: &Client, path: &str, until: Instant) -> Tally {
    let mut tally = Tally::default();
    while Instant::now() < until {
        match client.get(path).send::<serde_json::Value>().await {
            Ok(_) => tally.ok += 1,
            Err(e) if e.is_reauth_required() => tally.invalid_grant += 1,
            Err(e) if e.kind() == ErrorKind::Store => tally.store_errors += 1,
            Err(e) => {
                eprintln!("unexpected error: {e}");
                tally.other += 1;
            }
        }
        tokio::time::sleep(PAUSE).await;
    }
    tally
}

async fn api() -> MockApi {
    MockApi::builder()
        .rotate_refresh_tokens(true)
        .token_ttl(TTL)
        .start()
        .await
}

fn fleet_client(api: &MockApi, redis: &RedisServer, lease: Duration) -> Client {
    let store = RedisStore::from_url(redis.url()).unwrap().lease(lease);
    api.client_builder()
        .redis_store(store)
        .token_store_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// One client alone against its own mock for `run`: the yardstick for the fleet.
async fn alone(run: Duration) -> usize {
    let api = api().await;
    let tally = work(&api.client(), Instant::now() + run).await;
    assert!(tally.ok > 0, "{tally:?}");
    api.stats().token_requests
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_clients_in_one_process_share_one_rotating_grant() {
    let _serial = serial().await;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let api = api().await;
    let run = Duration::from_secs(4);
    let until = Instant::now() + run;
    let clients: Vec<_> = (0..8)
        .map(|_| fleet_client(&api, &redis, Duration::from_secs(5)))
        .collect();
    let workers: Vec<_> = clients
        .into_iter()
        .map(|c| tokio::spawn(async move { work(&c, until).await }))
        .collect();
    let baseline = alone(run).await;
    let mut total = Tally::default();
    for w in workers {
        let t = w.await.unwrap();
        assert!(t.ok > 0, "{t:?}");
        total.invalid_grant += t.invalid_grant;
        total.store_errors += t.store_errors;
        total.other += t.other;
    }
    let stats = api.stats();
    assert_eq!(stats.invalid_grants, 0, "{stats:?}");
    assert_eq!(
        (total.invalid_grant, total.store_errors, total.other),
        (0, 0, 0)
    );
    eprintln!(
        "8 clients: {} token requests in {run:?}; one client alone: {baseline}",
        stats.token_requests
    );
    assert!(
        stats.token_requests as f64 <= 1.5 * baseline as f64,
        "8 clients made {} token requests, one alone {baseline}",
        stats.token_requests
    );
}

// ===== child processes =====

/// The body of a child process (re-executed test binary); a no-op in a normal test run.
/// Configured from the environment, as a deployment would be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_worker() {
    let Ok(secs) = std::env::var("FLEET_WORKER_SECS") else {
        return;
    };
    let lease: u64 = std::env::var("FLEET_WORKER_LEASE_MS")
        .unwrap()
        .parse()
        .unwrap();
    let config = authed::Config::from_env().unwrap();
    let TokenStoreConfig::Redis(redis) = config.token_store.clone() else {
        panic!("AUTHED_TOKEN_STORE is not a Redis URL");
    };
    let store = RedisStore::from_config(redis)
        .unwrap()
        .lease(Duration::from_millis(lease));
    let client = config
        .into_builder()
        .redis_store(store)
        .token_store_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let until = Instant::now() + Duration::from_secs_f64(secs.parse().unwrap());
    // One request to /v1/limited after a while (the one that meets the 429), if asked.
    let limited = std::env::var("FLEET_WORKER_LIMITED_AFTER_MS")
        .ok()
        .map(|ms| {
            let client = client.clone();
            let after = Duration::from_millis(ms.parse().unwrap());
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                client.get("/v1/limited").send::<serde_json::Value>().await
            })
        });
    let path = std::env::var("FLEET_WORKER_PATH").unwrap_or_else(|_| "/v1/me".to_owned());
    let mut t = work_on(&client, &path, until).await;
    if let Some(limited) = limited {
        match limited.await.unwrap() {
            Ok(_) => t.ok += 1,
            Err(e) => {
                eprintln!("unexpected error on /v1/limited: {e}");
                t.other += 1;
            }
        }
    }
    println!(
        "FLEET-WORKER ok={} store_errors={} invalid_grant={} other={}",
        t.ok, t.store_errors, t.invalid_grant, t.other
    );
}

fn spawn_worker(
    api: &MockApi,
    redis: &RedisServer,
    secs: f64,
    extra: &[(&str, String)],
) -> std::process::Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "fleet_worker",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env("AUTHED_BASE_URL", api.base_url())
        .env("AUTHED_TOKEN_URL", api.token_url())
        .env(
            "AUTHED_REFRESH_TOKEN",
            authed::ExposeSecret::expose_secret(&api.refresh_token()),
        )
        .env("AUTHED_CLIENT_ID", "authed-mock")
        .env("AUTHED_TOKEN_STORE", redis.url())
        .env("FLEET_WORKER_SECS", secs.to_string())
        .env("FLEET_WORKER_LEASE_MS", "3000")
        .stdout(Stdio::piped());
    for (k, v) in extra {
        command.env(k, v);
    }
    command.spawn().unwrap()
}

fn tally_of(child: std::process::Child) -> Tally {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("FLEET-WORKER"))
        .unwrap_or_else(|| panic!("no tally from the worker: {text}"));
    let field = |name: &str| -> usize {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    Tally {
        ok: field("ok"),
        store_errors: field("store_errors"),
        invalid_grant: field("invalid_grant"),
        other: field("other"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_share_one_rotating_grant_for_20_seconds() {
    let _serial = serial().await;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let api = api().await;
    let run = Duration::from_secs(20);
    let children: Vec<_> = (0..4)
        .map(|_| spawn_worker(&api, &redis, run.as_secs_f64(), &[]))
        .collect();
    let baseline = alone(run).await;
    for child in children {
        let t = tokio::task::spawn_blocking(move || tally_of(child))
            .await
            .unwrap();
        assert!(t.ok > 0, "{t:?}");
        assert_eq!(
            (t.invalid_grant, t.store_errors, t.other),
            (0, 0, 0),
            "{t:?}"
        );
    }
    let stats = api.stats();
    assert_eq!(stats.invalid_grants, 0, "{stats:?}");
    eprintln!(
        "4 processes: {} token requests in {run:?}; one client alone: {baseline}",
        stats.token_requests
    );
    assert!(
        stats.token_requests as f64 <= 1.5 * baseline as f64,
        "4 processes made {} token requests in {run:?}, one client alone {baseline}",
        stats.token_requests
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_holder_killed_mid_refresh_holds_the_fleet_at_most_one_lease() {
    let _serial = serial().await;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let api = api().await;
    // The holder's token request goes to a server that accepts and never answers, so it is
    // killed mid-refresh with its lease held (and the grant's token not yet used up).
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_url = format!("http://{}/oauth/token", black_hole.local_addr().unwrap());
    let prefix = "authed:test-kill";
    let mut holder = spawn_worker(
        &api,
        &redis,
        30.0,
        &[
            ("AUTHED_TOKEN_URL", hole_url),
            ("AUTHED_TOKEN_STORE_KEY", prefix.to_owned()),
        ],
    );
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let held: bool = redis::cmd("EXISTS")
            .arg(format!("{prefix}:lock"))
            .query_async(&mut conn)
            .await
            .unwrap();
        if held {
            break;
        }
        assert!(Instant::now() < deadline, "the worker never took the lock");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    let killed_at = Instant::now();

    let lease = Duration::from_secs(3);
    let store = RedisStore::from_url(redis.url())
        .unwrap()
        .lease(lease)
        .key_prefix(prefix);
    let client = api
        .client_builder()
        .redis_store(store)
        .token_store_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    client
        .get("/v1/me")
        .send::<serde_json::Value>()
        .await
        .expect("the fleet recovers once the dead holder's lease expires");
    let waited = killed_at.elapsed();
    // It waited for the lease (the dead holder's lock was honoured), and no longer.
    assert!(waited >= Duration::from_millis(1500), "{waited:?}");
    assert!(waited <= lease + Duration::from_secs(1), "{waited:?}");
    // The grant is alive: the next refresh works too.
    api.expire_access_tokens();
    client
        .get("/v1/me")
        .send::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(api.stats().invalid_grants, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_closed_with_store_errors_and_the_fleet_recovers_after_a_restart() {
    let _serial = serial().await;
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let api = api().await;
    let clients: Vec<_> = (0..3)
        .map(|_| fleet_client(&api, &redis, Duration::from_secs(2)))
        .collect();
    let until = Instant::now() + Duration::from_secs(7);
    let workers: Vec<_> = clients
        .iter()
        .cloned()
        .map(|c| tokio::spawn(async move { work(&c, until).await }))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.stop();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let _redis = tokio::task::spawn_blocking(move || {
        redis.restart();
        redis
    })
    .await
    .unwrap();
    let mut total = Tally::default();
    for w in workers {
        let t = w.await.unwrap();
        total.ok += t.ok;
        total.store_errors += t.store_errors;
        total.invalid_grant += t.invalid_grant;
        total.other += t.other;
    }
    assert!(
        total.store_errors > 0,
        "no typed error while Redis was down: {total:?}"
    );
    assert_eq!((total.invalid_grant, total.other), (0, 0), "{total:?}");
    // Recovered, and the grant is alive.
    for client in &clients {
        client
            .get("/v1/me")
            .send::<serde_json::Value>()
            .await
            .unwrap();
    }
    assert_eq!(api.stats().invalid_grants, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_seen_by_one_client_holds_the_other_clients_of_the_fleet() {
    use wiremock::{Mock, ResponseTemplate, matchers::path};
    let _serial = serial().await;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let api = MockApi::builder().rotate_refresh_tokens(true).start().await;
    Mock::given(path("/v1/limited"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "2"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(api.server())
        .await;
    Mock::given(path("/v1/limited"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
        .with_priority(2)
        .mount(api.server())
        .await;
    // Two replicas: separate clients, separate stores, one Redis.
    let a = fleet_client(&api, &redis, Duration::from_secs(5));
    let b = fleet_client(&api, &redis, Duration::from_secs(5));
    for c in [&a, &b] {
        c.get("/v1/me").send::<serde_json::Value>().await.unwrap();
    }

    let started = Instant::now();
    let held = tokio::spawn(async move {
        a.get("/v1/limited")
            .send::<serde_json::Value>()
            .await
            .unwrap();
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    b.get("/v1/me").send::<serde_json::Value>().await.unwrap();
    let b_sent_after = started.elapsed();
    held.await.unwrap();
    // B was held until the end of A's Retry-After (2 s), not sent at 0.6 s.
    assert!(
        b_sent_after >= Duration::from_millis(1800),
        "{b_sent_after:?}"
    );
}

/// Answers 200 and notes when each request arrived.
#[derive(Clone, Default)]
struct Arrivals(std::sync::Arc<std::sync::Mutex<Vec<std::time::Instant>>>);

impl Arrivals {
    fn times(&self) -> Vec<std::time::Instant> {
        self.0.lock().unwrap().clone()
    }
}

impl wiremock::Respond for Arrivals {
    fn respond(&self, _: &wiremock::Request) -> wiremock::ResponseTemplate {
        self.0.lock().unwrap().push(std::time::Instant::now());
        wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({}))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_seen_by_one_process_holds_the_other_processes_of_the_fleet() {
    let retry_after = wiremock::ResponseTemplate::new(429).insert_header("retry-after", "2");
    one_process_holds_the_other_processes(retry_after).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_used_up_at_one_process_holds_the_other_processes_of_the_fleet() {
    let used_up = wiremock::ResponseTemplate::new(200)
        .set_body_json(serde_json::json!({}))
        .insert_header("ratelimit-limit", "100")
        .insert_header("ratelimit-remaining", "0")
        .insert_header("ratelimit-reset", "2");
    one_process_holds_the_other_processes(used_up).await;
}

/// Four processes; one meets `first` (a hold of 2 s) on /v1/limited; the others must stop.
async fn one_process_holds_the_other_processes(first: wiremock::ResponseTemplate) {
    use wiremock::{Mock, ResponseTemplate, matchers::path};
    let _serial = serial().await;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let api = MockApi::builder().rotate_refresh_tokens(true).start().await;
    // The first request to /v1/limited meets `first`; the time it was answered is noted.
    let limited = Arrivals::default();
    Mock::given(path("/v1/limited"))
        .respond_with({
            let limited = limited.clone();
            move |request: &wiremock::Request| {
                wiremock::Respond::respond(&limited, request);
                first.clone()
            }
        })
        .up_to_n_times(1)
        .with_priority(1)
        .mount(api.server())
        .await;
    Mock::given(path("/v1/limited"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
        .with_priority(2)
        .mount(api.server())
        .await;
    let pings = Arrivals::default();
    Mock::given(path("/v1/ping"))
        .respond_with(pings.clone())
        .mount(api.server())
        .await;

    // Four replicas (child processes) send GET /v1/ping every 25 ms for 5 s; one of them meets
    // the hold after 1.5 s.
    let run = 5.0;
    let ping = [("FLEET_WORKER_PATH", "/v1/ping".to_owned())];
    let mut children: Vec<_> = (0..3)
        .map(|_| spawn_worker(&api, &redis, run, &ping))
        .collect();
    children.push(spawn_worker(
        &api,
        &redis,
        run,
        &[
            ping[0].clone(),
            ("FLEET_WORKER_LIMITED_AFTER_MS", "1500".to_owned()),
        ],
    ));
    for child in children {
        let t = tokio::task::spawn_blocking(move || tally_of(child))
            .await
            .unwrap();
        assert!(t.ok > 0, "{t:?}");
        assert_eq!(
            (t.invalid_grant, t.store_errors, t.other),
            (0, 0, 0),
            "{t:?}"
        );
    }

    let limited = limited.times();
    assert_eq!(limited.len(), 1, "one hold for the whole fleet");
    let hit = limited[0];
    let pings = pings.times();
    // Pings that arrived from `from` to `to` seconds after the hold began (negative: before).
    let between = |from: f64, to: f64| {
        pings
            .iter()
            .filter(|t| {
                let at = if **t >= hit {
                    t.duration_since(hit).as_secs_f64()
                } else {
                    -hit.duration_since(**t).as_secs_f64()
                };
                from < at && at < to
            })
            .count()
    };
    let (before, during, after) = (between(-1.0, 0.0), between(0.5, 1.9), between(2.0, 3.0));
    eprintln!(
        "pings: {before} in the second before the hold, {during} from 0.5 s to 1.9 s into it, {after} in the second after it"
    );
    // The replicas were busy before and after; within the other processes' next read of the
    // hold (every 200 ms, plus publishing), they all stopped until it ended (2 s).
    assert!(before > 20 && after > 20, "{before} {after}");
    assert_eq!(during, 0, "the other processes were not held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_reseeds_from_the_configured_token_or_asks_for_reauthentication() {
    let _serial = serial().await;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let flush = |mut conn: redis::aio::MultiplexedConnection| async move {
        redis::cmd("FLUSHALL")
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    };

    // A server that does not rotate still accepts the configured token: re-seeded, no error.
    let api = MockApi::builder().start().await;
    let client = fleet_client(&api, &redis, Duration::from_secs(5));
    client
        .get("/v1/me")
        .send::<serde_json::Value>()
        .await
        .unwrap();
    flush(conn.clone()).await;
    api.expire_access_tokens();
    client
        .get("/v1/me")
        .send::<serde_json::Value>()
        .await
        .unwrap();
    let stored: bool = redis::cmd("EXISTS")
        .arg(
            redis::cmd("KEYS")
                .arg("authed:*:tokens")
                .query_async::<Vec<String>>(&mut conn)
                .await
                .unwrap(),
        )
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(stored, "the store was not re-seeded");

    // A rotating server has retired the configured token: a clear re-authentication error.
    let api = self::api().await;
    let client = fleet_client(&api, &redis, Duration::from_secs(5));
    client
        .get("/v1/me")
        .send::<serde_json::Value>()
        .await
        .unwrap();
    api.expire_access_tokens();
    client
        .get("/v1/me")
        .send::<serde_json::Value>()
        .await
        .unwrap(); // rotated
    flush(conn.clone()).await;
    api.expire_access_tokens();
    let err = client
        .get("/v1/me")
        .send::<serde_json::Value>()
        .await
        .unwrap_err();
    assert!(err.is_reauth_required(), "{err}");
    assert!(err.to_string().contains("re-authentication"), "{err}");
}

// ===== local-only mode =====

fn local_only_client(api: &MockApi, redis: &RedisServer) -> Client {
    let store = RedisStore::from_url(redis.url())
        .unwrap()
        .lease(Duration::from_secs(5))
        .local_only_when_down(true);
    api.client_builder()
        .redis_store(store)
        .token_store_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn me(client: &Client) -> authed::Result<serde_json::Value> {
    client.get("/v1/me").send().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_only_mode_never_refreshes_a_rotating_grant_while_redis_is_down_and_the_grant_survives()
 {
    let _serial = serial().await;
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let api = MockApi::builder().rotate_refresh_tokens(true).start().await;
    let (a, b) = (
        local_only_client(&api, &redis),
        local_only_client(&api, &redis),
    );
    // Both replicas refresh once with Redis up (the grant rotates: rt0 → rt1 → rt2).
    me(&a).await.unwrap();
    api.expire_access_tokens();
    me(&b).await.unwrap();
    let before = api.stats().token_requests;

    // Redis goes down and the access tokens expire: both replicas need a refresh.
    redis.stop();
    api.expire_access_tokens();
    for client in [&a, &b] {
        let err = me(client).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store, "{err}");
        assert!(err.to_string().contains("rotates"), "{err}");
    }
    assert_eq!(
        api.stats().token_requests,
        before,
        "a rotating grant was refreshed without the fleet lock"
    );

    // Redis returns: both recover, and the grant is alive.
    let _redis = tokio::task::spawn_blocking(move || {
        redis.restart();
        redis
    })
    .await
    .unwrap();
    // (B first: it holds the access token Redis shares, so it refreshes and A adopts.)
    me(&b).await.unwrap();
    me(&a).await.unwrap();
    api.expire_access_tokens();
    me(&a).await.unwrap();
    me(&b).await.unwrap();
    assert_eq!(api.stats().invalid_grants, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_only_mode_refreshes_a_non_rotating_grant_while_redis_is_down_and_writes_it_back() {
    let _serial = serial().await;
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let api = MockApi::builder().start().await;
    let a = local_only_client(&api, &redis);
    me(&a).await.unwrap(); // the grant kept its refresh token: it does not rotate

    redis.stop();
    api.expire_access_tokens();
    let started = Instant::now();
    me(&a)
        .await
        .expect("local-only mode refreshes a grant that does not rotate");
    eprintln!("refreshed without Redis in {:?}", started.elapsed());
    let after_outage = api.stats().token_requests;

    let redis = tokio::task::spawn_blocking(move || {
        redis.restart();
        redis
    })
    .await
    .unwrap();
    // A's store writes its record back within a poll of Redis (200 ms) of its return.
    me(&a).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    // A new replica adopts the access token A minted while Redis was down: no token request.
    let c = local_only_client(&api, &redis);
    me(&c).await.unwrap();
    assert_eq!(
        api.stats().token_requests,
        after_outage,
        "the new replica did not find the record minted while Redis was down"
    );
}

// ===== TLS and ACL =====

/// Writes a CA, and a certificate it signs for `localhost` and 127.0.0.1, into `dir`.
fn write_certificates(dir: &std::path::Path) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "authed fleet test CA");
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
}

/// Collects what a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const ACL_PASSWORD: &str = "acl-pw-9f3c1e7a";
const WRONG_PASSWORD: &str = "wrong-pw-5b8d2c40";

// One thread, so that the subscriber set for this test sees every task it spawns.
#[tokio::test]
async fn rediss_with_an_acl_user_and_a_private_ca_serves_the_fleet_and_bad_credentials_are_a_clear_store_error()
 {
    let _serial = serial().await;
    let logs = Logs::default();
    let writer = logs.clone();
    let _subscriber = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish(),
    );
    // TLS only (no plain port for clients), and no default user: only `app` gets in.
    let tls_port = redis_server::free_port();
    let Some(redis) = RedisServer::start_with(|dir| {
        write_certificates(dir);
        let file = |name: &str| dir.join(name).display().to_string();
        [
            vec!["--tls-port".to_owned(), tls_port.to_string()],
            vec!["--tls-cert-file".to_owned(), file("server.pem")],
            vec!["--tls-key-file".to_owned(), file("server.key")],
            vec!["--tls-ca-cert-file".to_owned(), file("ca.pem")],
            vec!["--tls-auth-clients".to_owned(), "no".to_owned()],
            vec!["--user".to_owned(), "default".to_owned(), "off".to_owned()],
            // The ACL docs/fleet.md recommends: the key prefix and the commands the store runs.
            [
                "--user",
                "app",
                "on",
                &format!(">{ACL_PASSWORD}"),
                "~authed:*",
                "+get",
                "+set",
                "+del",
                "+hget",
                "+hset",
                "+pexpire",
                "+evalsha",
                "+eval",
                "+script",
            ]
            .map(str::to_owned)
            .to_vec(),
        ]
        .concat()
    }) else {
        return;
    };
    let ca_file = redis.dir().join("ca.pem");
    let ca_pem = std::fs::read(&ca_file).unwrap();
    let url =
        |user: &str, password: &str| format!("rediss://{user}:{password}@localhost:{tls_port}/0");

    // Two replicas configured from the environment only: rediss:// with the ACL user, and the
    // private CA from <P>_TOKEN_STORE_CA.
    let api = api().await;
    let env = [
        ("AUTHED_TOKEN_STORE", url("app", ACL_PASSWORD)),
        ("AUTHED_TOKEN_STORE_CA", ca_file.display().to_string()),
    ];
    let children: Vec<_> = (0..2)
        .map(|_| spawn_worker(&api, &redis, 3.0, &env))
        .collect();
    for child in children {
        let t = tokio::task::spawn_blocking(move || tally_of(child))
            .await
            .unwrap();
        assert!(t.ok > 0, "{t:?}");
        assert_eq!(
            (t.invalid_grant, t.store_errors, t.other),
            (0, 0, 0),
            "{t:?}"
        );
    }
    let stats = api.stats();
    assert_eq!(stats.invalid_grants, 0, "{stats:?}");
    assert!(stats.token_requests >= 2, "{stats:?}");

    // The same from code, then wrong credentials and an untrusted certificate.
    let client_at = |store: RedisStore| {
        api.client_builder()
            .redis_store(store.lock_wait(Duration::from_secs(1)))
            .token_store_timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    };
    let good =
        client_at(RedisStore::from_url_with_ca(url("app", ACL_PASSWORD), ca_pem.clone()).unwrap());
    me(&good).await.unwrap();
    for bad in [url("app", WRONG_PASSWORD), url("nobody", WRONG_PASSWORD)] {
        let client = client_at(RedisStore::from_url_with_ca(bad, ca_pem.clone()).unwrap());
        api.expire_access_tokens();
        let err = me(&client).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store, "{err}");
        assert!(err.to_string().contains("refused the credentials"), "{err}");
        let shown = format!("{err} {err:?} {:?}", client.store_error());
        assert!(
            !shown.contains(WRONG_PASSWORD) && !shown.contains(ACL_PASSWORD),
            "{shown}"
        );
    }
    let untrusted = client_at(RedisStore::from_url(url("app", ACL_PASSWORD)).unwrap());
    api.expire_access_tokens();
    let err = me(&untrusted).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store, "{err}");
    assert!(err.to_string().contains("TLS"), "{err}");
    // A CA for a plain redis:// URL, or a file without a certificate, is a configuration error.
    for (url, pem) in [
        (redis.url(), ca_pem.clone()),
        (url("app", ACL_PASSWORD), b"not a certificate".to_vec()),
    ] {
        let err = RedisStore::from_url_with_ca(url, pem).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    }

    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("refused the credentials"),
        "the failures were not logged"
    );
    assert!(
        !logs.contains(WRONG_PASSWORD) && !logs.contains(ACL_PASSWORD),
        "a Redis password was logged"
    );
    assert_eq!(api.stats().invalid_grants, 0);
}

// ===== clocks =====

/// The system's clocks, with the wall clock `skew` ahead (or behind, if negative).
#[derive(Debug)]
struct SkewedClock {
    skew: f64,
}

impl authed::Clock for SkewedClock {
    fn now(&self) -> tokio::time::Instant {
        tokio::time::Instant::now()
    }
    fn now_utc(&self) -> std::time::SystemTime {
        let now = std::time::SystemTime::now();
        let by = Duration::from_secs_f64(self.skew.abs());
        if self.skew >= 0.0 { now + by } else { now - by }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_whose_clocks_differ_by_30_seconds_share_one_rotating_grant() {
    let _serial = serial().await;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let api = api().await;
    let until = Instant::now() + Duration::from_secs(4);
    // One replica on time, one 30 s ahead, one 30 s behind: far beyond the refresh margin.
    let skews = [0.0, 30.0, -30.0];
    let workers: Vec<_> = skews
        .into_iter()
        .map(|skew| {
            let store = RedisStore::from_url(redis.url())
                .unwrap()
                .lease(Duration::from_secs(5));
            let client = api
                .client_builder()
                .redis_store(store)
                .clock(SkewedClock { skew })
                .token_store_timeout(Duration::from_secs(2))
                .build()
                .unwrap();
            (skew, client)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|(skew, client)| tokio::spawn(async move { (skew, work(&client, until).await) }))
        .collect();
    for w in workers {
        let (skew, t) = w.await.unwrap();
        eprintln!("clock {skew:+} s: {t:?}");
        assert!(t.ok > 0, "{t:?}");
        assert_eq!(
            (t.invalid_grant, t.store_errors, t.other),
            (0, 0, 0),
            "clock {skew:+} s: {t:?}"
        );
    }
    let stats = api.stats();
    eprintln!(
        "3 skewed clients: {} token requests in 4 s",
        stats.token_requests
    );
    assert_eq!(stats.invalid_grants, 0, "{stats:?}");
}
