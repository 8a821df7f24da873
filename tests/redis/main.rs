//! The redis adapter against a real Redis (`UNITEL_TEST_REDIS_URL`, started by
//! `scripts/test.sh`): async (`MultiplexedConnection`, `ConnectionManager`) and sync
//! (`Connection`) paths, typed commands, `redis::cmd`, pipelines and transactions, read back
//! through `unitel::testing::capture`. Failures: WRONGTYPE and other server errors, a
//! connection killed by the server, and a `ConnectionManager` whose server went away and
//! refuses (through an in-process TCP proxy that is shut down: fault injection only). Secrets
//! (an ACL user's password in the URL, the values sent) are looked for in every span, log line
//! and metric. With telemetry off (a child process) the wrapper is the bare connection.

#[path = "../support/mod.rs"]
mod support;

mod helpers;

use helpers::*;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands as _, Commands as _, ConnectionLike as _, RedisResult};
use std::time::Duration;
use unitel::testing::{capture, PointValue};
use unitel::{get_telemetry, instrument_redis, InstrumentedRedis};

// ---------------------------------------------------------------------------------------------
// Async

#[tokio::test]
async fn typed_commands_on_a_multiplexed_connection_are_children_of_the_caller() {
    let cap = capture();
    let client = client();
    let mut redis = instrument_redis(multiplexed(&client).await, &client);
    let key = unique("typed");
    let hash = unique("typed-hash");
    let counter = unique("typed-counter");
    let value = unique("typed-value");
    let before = |op: &str| duration_count(&cap, "redis", "0", op, &[]);
    // `incr` sends INCRBY.
    let (set0, get0, hset0, incr0) = (
        before("SET"),
        before("GET"),
        before("HSET"),
        before("INCRBY"),
    );

    let tel = get_telemetry("app");
    let got: Option<String> = tel
        .span("parent")
        .instrument(async {
            redis.set::<_, _, ()>(&key, &value).await.expect("SET");
            redis
                .hset::<_, _, _, ()>(&hash, "field", &value)
                .await
                .expect("HSET");
            redis.incr::<_, _, ()>(&counter, 5).await.expect("INCR");
            redis.get(&key).await.expect("GET")
        })
        .await;
    assert_eq!(
        got.as_deref(),
        Some(value.as_str()),
        "the wrapper returns the reply"
    );

    let parent = cap.span("parent").expect("parent span");
    let spans = redis_spans(&cap);
    assert_eq!(names(&spans), ["SET", "HSET", "INCRBY", "GET"]);
    for span in &spans {
        assert_redis_span(span, &parent, "redis", "0");
        assert_ok_span(span);
        assert_eq!(
            string_attr(span, "db.operation.name").as_deref(),
            Some(span.name.as_str())
        );
        assert!(
            span.attr("db.query.text").is_none(),
            "query text is off by default"
        );
        assert!(span.attr("db.operation.batch.size").is_none());
    }
    assert_eq!(before("SET"), set0 + 1);
    assert_eq!(before("GET"), get0 + 1);
    assert_eq!(before("HSET"), hset0 + 1);
    assert_eq!(before("INCRBY"), incr0 + 1);
    assert_duration_points(&cap);
    support::assert_no_secret(&cap, &[&value]);

    let _: () = redis.del(&[&key, &hash, &counter]).await.expect("DEL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_manager_is_cloned_per_task_and_each_span_has_its_caller() {
    let cap = capture();
    let client = client();
    let manager = client
        .get_connection_manager()
        .await
        .expect("connection manager");
    let redis = instrument_redis(manager, &client).component("redis.manager");
    let tel = get_telemetry("app");
    let keys: Vec<String> = (0..2).map(|i| unique(&format!("manager-{i}"))).collect();

    let mut tasks = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let mut redis = redis.clone();
        let key = key.clone();
        let span = tel.span(format!("task-{i}"));
        tasks.push(tokio::spawn(span.instrument(async move {
            let _: () = redis.set(&key, i).await.expect("SET");
            tokio::task::yield_now().await;
            let n: usize = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .expect("GET");
            assert_eq!(n, i);
        })));
    }
    for task in tasks {
        task.await.expect("task");
    }
    // A guard's span is the parent too, and a two-word command is named by both words.
    let mut redis2 = redis.clone();
    {
        let _guard = tel.trace("guarded");
        let _: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory")
            .query_async(&mut redis2)
            .await
            .expect("CONFIG GET");
    }

    let spans = redis_spans(&cap);
    for (i, _) in keys.iter().enumerate() {
        let task = cap.span(&format!("task-{i}")).expect("task span");
        let children: Vec<_> = spans
            .iter()
            .filter(|s| s.parent_span_id.as_deref() == Some(task.span_id.as_str()))
            .collect();
        assert_eq!(
            children.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["SET", "GET"]
        );
        for span in children {
            assert_redis_span(span, &task, "redis.manager", "0");
            assert_ok_span(span);
        }
    }
    let guarded = cap.span("guarded").expect("guard span");
    let config = cap.span("CONFIG GET").expect("CONFIG GET span");
    assert_redis_span(&config, &guarded, "redis.manager", "0");
    assert_eq!(
        string_attr(&config, "db.operation.name").as_deref(),
        Some("CONFIG GET")
    );
    assert_eq!(duration_count(&cap, "redis.manager", "0", "SET", &[]), 2);
    assert_eq!(duration_count(&cap, "redis.manager", "0", "GET", &[]), 2);
    assert_eq!(
        duration_count(&cap, "redis.manager", "0", "CONFIG GET", &[]),
        1
    );

    let mut redis = redis;
    let _: () = redis.del(&keys).await.expect("DEL");
}

#[tokio::test]
async fn async_pipelines_and_transactions_are_one_span_each() {
    let cap = capture();
    let client = client();
    let mut redis =
        instrument_redis(multiplexed(&client).await, &client).component("redis.pipelines");
    let (a, b) = (unique("pipe-a"), unique("pipe-b"));
    let secret = unique("pipe-secret");
    let tel = get_telemetry("app");

    tel.span("parent")
        .instrument(async {
            let (got,): (String,) = redis::pipe()
                .set(&a, &secret)
                .ignore()
                .incr(&b, 1)
                .ignore()
                .get(&a)
                .query_async(&mut redis)
                .await
                .expect("pipeline");
            assert_eq!(got, secret);
            let (x, y): (i64, i64) = redis::pipe()
                .incr(&b, 1)
                .incr(&b, 1)
                .query_async(&mut redis)
                .await
                .expect("pipeline of INCR");
            assert_eq!((x, y), (2, 3));
            let (x, y): (i64, i64) = redis::pipe()
                .atomic()
                .incr(&b, 10)
                .incr(&b, 10)
                .query_async(&mut redis)
                .await
                .expect("transaction");
            assert_eq!((x, y), (13, 23));
            let (one,): (String,) = redis::pipe()
                .get(&a)
                .query_async(&mut redis)
                .await
                .expect("pipeline of one");
            assert_eq!(one, secret);
            let (ok,): (i64,) = redis::pipe()
                .atomic()
                .del(&[&a, &b])
                .query_async(&mut redis)
                .await
                .expect("transaction of one");
            assert_eq!(ok, 2);
        })
        .await;

    let parent = cap.span("parent").expect("parent span");
    let spans = redis_spans(&cap);
    assert_eq!(
        names(&spans),
        ["PIPELINE", "PIPELINE", "MULTI", "GET", "MULTI"]
    );
    let expect = [
        ("PIPELINE", Some(3)),
        ("PIPELINE INCRBY", Some(2)),
        ("MULTI INCRBY", Some(2)),
        ("GET", None),
        ("MULTI DEL", None),
    ];
    for (span, (operation, batch)) in spans.iter().zip(expect) {
        assert_redis_span(span, &parent, "redis.pipelines", "0");
        assert_ok_span(span);
        assert_eq!(
            string_attr(span, "db.operation.name").as_deref(),
            Some(operation)
        );
        assert_eq!(
            int_attr(span, "db.operation.batch.size"),
            batch,
            "{operation}"
        );
    }
    assert_eq!(
        duration_count(&cap, "redis.pipelines", "0", "PIPELINE", &[]),
        1
    );
    assert_eq!(
        duration_count(&cap, "redis.pipelines", "0", "MULTI INCRBY", &[]),
        1
    );
    assert_eq!(duration_count(&cap, "redis.pipelines", "0", "GET", &[]), 1);
    support::assert_no_secret(&cap, &[&secret]);
}

/// A connection that logs a line, then passes the command to the real one: the line is stamped
/// with the span current while the wrapper polls it.
#[derive(Clone)]
struct Logging<C>(C);

impl<C: redis::aio::ConnectionLike + Send> redis::aio::ConnectionLike for Logging<C> {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            get_telemetry("app").log_info("inside the connection");
            self.0.req_packed_command(cmd).await
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        self.0.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }
}

impl<C: redis::ConnectionLike> redis::ConnectionLike for Logging<C> {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<redis::Value> {
        get_telemetry("app").log_info("inside the sync connection");
        self.0.req_packed_command(cmd)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<redis::Value>> {
        self.0.req_packed_commands(cmd, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }

    fn check_connection(&mut self) -> bool {
        self.0.check_connection()
    }

    fn is_open(&self) -> bool {
        self.0.is_open()
    }
}

#[tokio::test]
async fn the_command_span_is_current_while_the_connection_works() {
    let cap = capture();
    let client = client();
    let mut redis = instrument_redis(Logging(multiplexed(&client).await), &client);
    let mut sync = instrument_redis(Logging(client.get_connection().expect("connect")), &client);
    let key = unique("current");
    let tel = get_telemetry("app");
    let _: Option<String> = tel
        .span("parent")
        .instrument(redis.get(&key))
        .await
        .expect("GET");
    {
        let _parent = tel.trace("sync-parent");
        let _: Option<String> = sync.get(&key).expect("GET");
    }

    for (parent, message) in [
        ("parent", "inside the connection"),
        ("sync-parent", "inside the sync connection"),
    ] {
        let parent = cap.span(parent).expect("parent span");
        let get = redis_spans(&cap)
            .into_iter()
            .find(|s| s.parent_span_id.as_deref() == Some(parent.span_id.as_str()))
            .expect("GET span under the parent");
        assert_eq!(get.name, "GET");
        let log = cap.log(message).expect("the connection's log line");
        assert_eq!(log.trace_id.as_deref(), Some(get.trace_id.as_str()));
        assert_eq!(
            log.span_id.as_deref(),
            Some(get.span_id.as_str()),
            "{message}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Sync

#[test]
fn sync_connection_commands_pipelines_and_raw_bytes() {
    let cap = capture();
    let client = client_for("", 3);
    let connection = client.get_connection().expect("sync connection");
    let mut redis =
        InstrumentedRedis::new(connection, client.get_connection_info()).component("redis.sync");
    let (a, b) = (unique("sync-a"), unique("sync-b"));
    let secret = unique("sync-secret");
    let tel = get_telemetry("app");

    {
        let _parent = tel.trace("parent");
        let _: () = redis.set(&a, &secret).expect("SET");
        let got: String = redis::cmd("GET").arg(&a).query(&mut redis).expect("GET");
        assert_eq!(got, secret);
        let (x, y): (i64, i64) = redis::pipe()
            .incr(&b, 1)
            .incr(&b, 1)
            .query(&mut redis)
            .expect("pipeline");
        assert_eq!((x, y), (1, 2));
        let (got, n): (String, i64) = redis::pipe()
            .atomic()
            .get(&a)
            .incr(&b, 1)
            .query(&mut redis)
            .expect("transaction");
        assert_eq!((got.as_str(), n), (secret.as_str(), 3));
        // The raw path: packed bytes, parsed by the wrapper for the name only.
        let raw = redis
            .req_packed_command(&redis::cmd("STRLEN").arg(&a).get_packed_command())
            .expect("STRLEN");
        assert_eq!(raw, redis::Value::Int(secret.len() as i64));
        let _: () = redis.del(&[&a, &b]).expect("DEL");
    }

    let parent = cap.span("parent").expect("parent span");
    let spans = redis_spans(&cap);
    assert_eq!(
        names(&spans),
        ["SET", "GET", "PIPELINE", "MULTI", "STRLEN", "DEL"]
    );
    let expect = [
        ("SET", None),
        ("GET", None),
        ("PIPELINE INCRBY", Some(2)),
        ("MULTI", Some(2)),
        ("STRLEN", None),
        ("DEL", None),
    ];
    for (span, (operation, batch)) in spans.iter().zip(expect) {
        assert_redis_span(span, &parent, "redis.sync", "3");
        assert_ok_span(span);
        assert_eq!(
            string_attr(span, "db.operation.name").as_deref(),
            Some(operation)
        );
        assert_eq!(
            int_attr(span, "db.operation.batch.size"),
            batch,
            "{operation}"
        );
    }
    assert_eq!(duration_count(&cap, "redis.sync", "3", "MULTI", &[]), 1);
    assert_eq!(duration_count(&cap, "redis.sync", "3", "STRLEN", &[]), 1);
    assert_duration_points(&cap);
    support::assert_no_secret(&cap, &[&secret]);
}

// ---------------------------------------------------------------------------------------------
// Errors

#[tokio::test]
async fn wrong_type_and_other_server_errors_are_recorded_by_their_prefix() {
    let cap = capture();
    let client = client();
    let component = "redis.errors";
    let mut redis = instrument_redis(multiplexed(&client).await, &client).component(component);
    let list = unique("err-list");
    let string = unique("err-string");
    let secret = unique("err-secret");
    let tel = get_telemetry("app");

    tel.span("parent")
        .instrument(async {
            let _: () = redis.rpush(&list, &secret).await.expect("RPUSH");
            let _: () = redis.set(&string, &secret).await.expect("SET");
            let e = redis
                .get::<_, String>(&list)
                .await
                .expect_err("GET on a list");
            assert_eq!(e.code(), Some("WRONGTYPE"));
            // A pipeline whose second command fails, then a transaction whose second
            // command fails when EXEC runs it.
            let e = redis::pipe()
                .get(&string)
                .lpush(&string, &secret)
                .query_async::<()>(&mut redis)
                .await
                .expect_err("pipeline");
            assert!(e.to_string().contains("WRONGTYPE"), "{e}");
            let e = redis::pipe()
                .atomic()
                .get(&string)
                .lpush(&string, &secret)
                .query_async::<()>(&mut redis)
                .await
                .expect_err("transaction");
            assert!(e.to_string().contains("WRONGTYPE"), "{e}");
            // Rejected when queued (wrong number of arguments): EXEC aborts.
            let e = redis::pipe()
                .atomic()
                .get(&string)
                .cmd("SET")
                .arg(&secret)
                .query_async::<()>(&mut redis)
                .await
                .expect_err("aborted transaction");
            assert_eq!(e.code(), Some("EXECABORT"));
            // An unknown command: the server's message quotes it and its first argument.
            let e = redis::cmd(&format!("{secret} x"))
                .arg(&secret)
                .query_async::<()>(&mut redis)
                .await
                .expect_err("unknown command");
            assert_eq!(e.code(), Some("ERR"));
            assert!(e.to_string().contains(&secret), "the server echoes it: {e}");
            // The same command succeeding afterwards is measured in the success series.
            for _ in 0..2 {
                let got: String = redis.get(&string).await.expect("GET on the string");
                assert_eq!(got, secret);
            }
        })
        .await;

    let parent = cap.span("parent").expect("parent span");
    let spans = redis_spans(&cap);
    assert_eq!(
        names(&spans),
        ["RPUSH", "SET", "GET", "PIPELINE", "MULTI", "MULTI", "_OTHER", "GET", "GET"]
    );
    for span in &spans {
        assert_redis_span(span, &parent, component, "0");
    }
    assert_ok_span(&spans[0]);
    assert_ok_span(&spans[1]);
    assert_error_span(&spans[2], "WRONGTYPE", Some("WRONGTYPE"));
    assert_error_span(&spans[3], "WRONGTYPE", Some("WRONGTYPE"));
    assert_error_span(&spans[4], "WRONGTYPE", Some("WRONGTYPE"));
    assert_error_span(&spans[5], "EXECABORT", Some("EXECABORT"));
    assert_error_span(&spans[6], "ERR", Some("ERR"));
    assert_eq!(
        string_attr(&spans[6], "db.operation.name").as_deref(),
        Some("_OTHER")
    );

    let wrongtype = [
        ("db.response.status_code", "WRONGTYPE"),
        ("error.type", "WRONGTYPE"),
    ];
    assert_eq!(duration_count(&cap, component, "0", "GET", &wrongtype), 1);
    assert_ok_span(&spans[7]);
    assert_ok_span(&spans[8]);
    assert_eq!(duration_count(&cap, component, "0", "GET", &[]), 2);
    assert_eq!(
        duration_count(&cap, component, "0", "PIPELINE", &wrongtype),
        1
    );
    assert_eq!(
        duration_count(
            &cap,
            component,
            "0",
            "MULTI",
            &[
                ("db.response.status_code", "EXECABORT"),
                ("error.type", "EXECABORT")
            ]
        ),
        1
    );
    assert_eq!(
        duration_count(
            &cap,
            component,
            "0",
            "_OTHER",
            &[("db.response.status_code", "ERR"), ("error.type", "ERR")]
        ),
        1
    );
    assert_duration_points(&cap);
    support::assert_no_secret(&cap, &[&secret]);

    let _: () = redis.del(&[&list, &string]).await.expect("DEL");
}

#[test]
fn sync_wrong_type_is_an_error_span() {
    let cap = capture();
    let client = client();
    let component = "redis.sync.errors";
    let mut redis =
        instrument_redis(client.get_connection().expect("connect"), &client).component(component);
    let string = unique("sync-err");
    let tel = get_telemetry("app");
    {
        let _parent = tel.trace("parent");
        let _: () = redis.set(&string, "x").expect("SET");
        let e = redis
            .lpush::<_, _, ()>(&string, "y")
            .expect_err("LPUSH on a string");
        assert_eq!(e.code(), Some("WRONGTYPE"));
        let _: () = redis.del(&string).expect("DEL");
    }
    let parent = cap.span("parent").expect("parent span");
    let lpush = cap.span("LPUSH").expect("LPUSH span");
    assert_redis_span(&lpush, &parent, component, "0");
    assert_error_span(&lpush, "WRONGTYPE", Some("WRONGTYPE"));
    assert_eq!(
        duration_count(
            &cap,
            component,
            "0",
            "LPUSH",
            &[
                ("db.response.status_code", "WRONGTYPE"),
                ("error.type", "WRONGTYPE")
            ]
        ),
        1
    );
}

#[tokio::test]
async fn a_connection_killed_by_the_server_fails_its_next_command() {
    let cap = capture();
    let client = client();
    let component = "redis.killed";
    let tel = get_telemetry("app");

    // Async: the multiplexed connection's next command finds the socket closed.
    let mut redis = instrument_redis(multiplexed(&client).await, &client).component(component);
    let id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut redis)
        .await
        .expect("CLIENT ID");
    kill_client(id);
    let result: RedisResult<Option<String>> = tel
        .span("async-parent")
        .instrument(async {
            // The first command may still be written before the close is seen.
            let first: RedisResult<Option<String>> = redis.get(unique("killed")).await;
            match first {
                Err(e) => Err(e),
                Ok(_) => redis.get(unique("killed")).await,
            }
        })
        .await;
    let e = result.expect_err("a command on a killed connection");
    assert!(e.is_io_error() || e.is_connection_dropped(), "{e:?}");

    // Sync: the same through `Connection`.
    let mut sync =
        instrument_redis(client.get_connection().expect("connect"), &client).component(component);
    let id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query(&mut sync)
        .expect("CLIENT ID");
    kill_client(id);
    {
        let _parent = tel.trace("sync-parent");
        let e = sync
            .get::<_, Option<String>>(unique("killed"))
            .expect_err("a command on a killed connection");
        assert!(e.is_io_error() || e.is_connection_dropped(), "{e:?}");
    }

    for parent in ["async-parent", "sync-parent"] {
        let parent = cap.span(parent).expect("parent span");
        let failed: Vec<_> = redis_spans(&cap)
            .into_iter()
            .filter(|s| s.parent_span_id.as_deref() == Some(parent.span_id.as_str()))
            .filter(|s| s.attr("error.type").is_some())
            .collect();
        assert_eq!(names(&failed), ["GET"], "under {}", parent.name);
        let span = &failed[0];
        assert_redis_span(span, &parent, component, "0");
        let error_type = string_attr(span, "error.type").unwrap_or_default();
        assert!(
            ["connection_dropped", "io"].contains(&error_type.as_str()),
            "error.type {error_type}"
        );
        assert_error_span(span, &error_type, None);
    }
    let dropped: u64 = ["connection_dropped", "io"]
        .iter()
        .map(|t| duration_count(&cap, component, "0", "GET", &[("error.type", t)]))
        .sum();
    assert_eq!(dropped, 2);
}

#[tokio::test]
async fn a_connection_manager_whose_server_refuses_records_connection_refused() {
    let cap = capture();
    let component = "redis.refused";
    let proxy = Proxy::start().await;
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", proxy.port)).expect("url");
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_min_delay(Duration::from_millis(1))
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)));
    let manager: ConnectionManager = client
        .get_connection_manager_with_config(config)
        .await
        .expect("manager through the proxy");
    let mut redis = instrument_redis(manager, &client).component(component);
    let key = unique("refused");
    let _: Option<String> = redis.get(&key).await.expect("GET through the proxy");
    proxy.shut().await;

    let tel = get_telemetry("app");
    let mut errors = Vec::new();
    tel.span("parent")
        .instrument(async {
            // The first command sees the dropped connection and starts a reconnection,
            // which is refused; later commands get that refusal.
            for _ in 0..20 {
                match redis.get::<_, Option<String>>(&key).await {
                    Err(e) if e.is_connection_refusal() => {
                        errors.push(e);
                        break;
                    }
                    Err(e) => errors.push(e),
                    Ok(_) => panic!("a GET succeeded through a shut proxy"),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    assert!(
        errors.last().is_some_and(|e| e.is_connection_refusal()),
        "no refusal: {errors:?}"
    );

    let parent = cap.span("parent").expect("parent span");
    let spans = redis_spans(&cap);
    let failed: Vec<_> = spans
        .iter()
        .filter(|s| s.parent_span_id.as_deref() == Some(parent.span_id.as_str()))
        .collect();
    assert_eq!(failed.len(), errors.len(), "one span per failed command");
    let last = failed.last().expect("a failed span");
    assert_eq!(last.name, "GET");
    assert_error_span(last, "connection_refused", None);
    // server.port is the configured (proxy) port: check the rest by hand.
    assert_eq!(
        string_attr(last, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        int_attr(last, "server.port"),
        Some(i64::from(proxy_port_of(&client)))
    );
    let port = proxy_port_of(&client).to_string();
    let point = cap.point(
        component,
        DURATION,
        &[
            ("db.system.name", "redis"),
            ("db.namespace", "0"),
            ("db.operation.name", "GET"),
            ("server.address", "127.0.0.1"),
            ("server.port", &port),
            ("error.type", "connection_refused"),
        ],
    );
    assert!(
        matches!(point, Some(PointValue::Histogram { count, .. }) if count >= 1),
        "{point:?}"
    );
}

#[tokio::test]
async fn a_response_timeout_is_recorded_as_timeout() {
    // BLPOP on an empty list waits for 2 s on the server; the client gives up after 100 ms.
    let cap = capture();
    let client = client();
    let component = "redis.timeout";
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_millis(100)));
    let connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect");
    let mut redis = instrument_redis(connection, &client).component(component);
    let tel = get_telemetry("app");
    let key = unique("timeout");
    let e = tel
        .span("parent")
        .instrument(redis.blpop::<_, Option<(String, String)>>(&key, 2.0))
        .await
        .expect_err("BLPOP outlives the response timeout");
    assert!(e.is_timeout(), "{e:?}");

    let parent = cap.span("parent").expect("parent span");
    let blpop = cap.span("BLPOP").expect("BLPOP span");
    assert_redis_span(&blpop, &parent, component, "0");
    assert_error_span(&blpop, "timeout", None);
    assert_eq!(
        duration_count(&cap, component, "0", "BLPOP", &[("error.type", "timeout")]),
        1
    );
}

#[test]
fn a_refused_connection_fails_before_any_wrapper_exists() {
    // Nothing listens on a port just released: connecting fails in the client, so there is
    // no connection to wrap and nothing to record.
    let cap = capture();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("url");
    let Err(e) = client.get_connection() else {
        panic!("connected to a port nothing listens on");
    };
    assert!(e.is_connection_refusal(), "{e:?}");
    assert!(redis_spans(&cap).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Secrets and query text

#[tokio::test]
async fn no_password_or_value_appears_in_spans_logs_metrics_or_debug() {
    let cap = capture();
    let user = unique("user").replace(':', "-");
    let password = unique("pw").replace(':', "-");
    let value = unique("value");
    let key = unique("secret-key");
    {
        let mut admin = client().get_connection().expect("admin");
        let _: () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg(&user)
            .arg("on")
            .arg(format!(">{password}"))
            .arg("~*")
            .arg("+@all")
            .query(&mut admin)
            .expect("ACL SETUSER");
    }
    let client = client_for(&format!("{user}:{password}@"), 0);
    let tel = get_telemetry("app");
    let component = "redis.secrets";

    let mut redis = instrument_redis(multiplexed(&client).await, &client)
        .component(component)
        .with_query_text(true);
    let debug = format!("{redis:?}");
    tel.span("parent")
        .instrument(async {
            let whoami: String = redis::cmd("ACL")
                .arg("WHOAMI")
                .query_async(&mut redis)
                .await
                .expect("ACL WHOAMI");
            assert_eq!(whoami, user, "connected as the ACL user");
            let _: () = redis.set(&key, &value).await.expect("SET");
            let _: String = redis.get(&key).await.expect("GET");
            let _: () = redis::pipe()
                .atomic()
                .set(&key, &value)
                .ignore()
                .query_async(&mut redis)
                .await
                .expect("MULTI");
            // AUTH with the password as an argument, and a command named by the value.
            let _: () = redis::cmd("AUTH")
                .arg(&user)
                .arg(&password)
                .query_async(&mut redis)
                .await
                .expect("AUTH");
            let _ = redis::cmd(&value).query_async::<()>(&mut redis).await;
        })
        .await;
    let mut sync = instrument_redis(client.get_connection().expect("sync"), &client)
        .component(component)
        .with_query_text(true);
    let sync_debug = format!("{sync:?}");
    {
        let _parent = tel.trace("sync-parent");
        let _: () = sync.set(&key, &value).expect("SET");
        let _: () = redis::pipe()
            .set(&key, &value)
            .get(&key)
            .query(&mut sync)
            .expect("PIPELINE");
    }
    tel.log_info_with("after the commands", &[("component", component)]);

    let spans = redis_spans(&cap);
    assert_eq!(
        names(&spans),
        [
            "ACL WHOAMI",
            "SET",
            "GET",
            "MULTI",
            "AUTH",
            "_OTHER",
            "SET",
            "PIPELINE"
        ]
    );
    let texts: Vec<_> = spans
        .iter()
        .map(|s| string_attr(s, "db.query.text").unwrap_or_default())
        .collect();
    assert_eq!(
        texts,
        [
            "ACL WHOAMI",
            "SET ? ?",
            "GET ?",
            "MULTI; SET ? ?; EXEC",
            "AUTH ? ?",
            "_OTHER",
            "SET ? ?",
            "SET ? ?; GET ?",
        ]
    );
    assert!(!cap.raw_lines().is_empty(), "the log line is captured");
    let secrets = [&*user, &*password, &*value, &*key];
    support::assert_no_secret(&cap, &secrets);
    for secret in secrets {
        assert!(!debug.contains(secret), "{secret} in {debug}");
        assert!(!sync_debug.contains(secret), "{secret} in {sync_debug}");
    }
    assert!(debug.contains("InstrumentedRedis"), "{debug}");

    let _: () = redis.del(&key).await.expect("DEL");
    let mut admin = self::client().get_connection().expect("admin");
    let _: i64 = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .query(&mut admin)
        .expect("ACL DELUSER");
}

#[tokio::test]
async fn query_text_is_absent_by_default_and_all_question_marks_when_on() {
    let cap = capture();
    let client = client();
    let connection = multiplexed(&client).await;
    let mut plain = instrument_redis(connection.clone(), &client).component("redis.text");
    let mut with_text = instrument_redis(connection, &client)
        .component("redis.text")
        .with_query_text(true);
    let key = unique("text");
    let _: () = plain.hset(&key, "field", "value").await.expect("HSET");
    let _: () = with_text.hset(&key, "field", "value").await.expect("HSET");
    let _: (i64, i64) = redis::pipe()
        .atomic()
        .hincr(&key, "n", 1)
        .hlen(&key)
        .query_async(&mut with_text)
        .await
        .expect("MULTI");
    let _: () = with_text.del(&key).await.expect("DEL");

    let spans = redis_spans(&cap);
    assert_eq!(names(&spans), ["HSET", "HSET", "MULTI", "DEL"]);
    assert!(spans[0].attr("db.query.text").is_none());
    assert_eq!(
        string_attr(&spans[1], "db.query.text").as_deref(),
        Some("HSET ? ? ?")
    );
    assert_eq!(
        string_attr(&spans[2], "db.query.text").as_deref(),
        Some("MULTI; HINCRBY ? ? ?; HLEN ?; EXEC")
    );
    assert_eq!(
        string_attr(&spans[3], "db.query.text").as_deref(),
        Some("DEL ?")
    );
    // Both wrappers' HSET share one metric series: the text is never a metric attribute.
    assert_eq!(duration_count(&cap, "redis.text", "0", "HSET", &[]), 2);
    assert_duration_points(&cap);
}

// ---------------------------------------------------------------------------------------------
// Off

#[test]
fn with_telemetry_off_the_wrapper_is_the_bare_connection() {
    if support::in_parent("with_telemetry_off_the_wrapper_is_the_bare_connection", &[]) {
        return;
    }
    // The child: telemetry was never configured.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = client();
    let key = unique("off");
    runtime.block_on(async {
        let mut redis = instrument_redis(multiplexed(&client).await, &client);
        let _: () = redis.set(&key, 7).await.expect("SET");
        let n: i64 = redis.incr(&key, 1).await.expect("INCR");
        assert_eq!(n, 8);
        let (a, b): (i64, i64) = redis::pipe()
            .atomic()
            .incr(&key, 1)
            .get(&key)
            .query_async(&mut redis)
            .await
            .expect("MULTI");
        assert_eq!((a, b), (9, 9));
        let e = redis
            .lpush::<_, _, ()>(&key, 1)
            .await
            .expect_err("WRONGTYPE");
        assert_eq!(e.code(), Some("WRONGTYPE"));
    });
    let mut sync = instrument_redis(client.get_connection().expect("connect"), &client);
    let n: i64 = sync.get(&key).expect("GET");
    assert_eq!(n, 9);
    let _: () = sync.del(&key).expect("DEL");
}
