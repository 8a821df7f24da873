use super::*;
use proptest::prelude::*;

fn pg(sql: &str) -> Analysis {
    analyze(sql, Dialect::Postgres)
}

fn lite(sql: &str) -> Analysis {
    analyze(sql, Dialect::Sqlite)
}

fn text(sql: &str) -> String {
    pg(sql).text
}

/// `(summary, operation, collection)`.
type Parts<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// `(summary, operation, collection)` as `&str`s.
fn parts(a: &Analysis) -> Parts<'_> {
    (
        a.summary.as_deref(),
        a.operation.as_deref(),
        a.collection.as_deref(),
    )
}

#[test]
fn parameterised_queries_are_kept_as_they_are() {
    for sql in [
        "SELECT name FROM users WHERE id = ?",
        "SELECT name FROM users WHERE id = $1 AND email = $2",
        "INSERT INTO users (name, email) VALUES (?1, ?2) RETURNING id",
        "UPDATE users SET name = :name WHERE id = @id",
        "SELECT * FROM t WHERE a = $a AND b IS NULL",
        "SELECT \"Name\"\n  FROM \"public\".\"users\"\n WHERE id = $1::int8",
    ] {
        assert_eq!(text(sql), sql, "{sql}");
    }
    let sqlite = "SELECT `name`, [email] FROM users WHERE id = ?";
    assert_eq!(lite(sqlite).text, sqlite);
}

#[test]
fn literals_become_placeholders() {
    let cases = [
        (
            "SELECT * FROM users WHERE email = 'secret@example.com'",
            "SELECT * FROM users WHERE email = ?",
        ),
        ("SELECT 'it''s', 'x'", "SELECT ?, ?"),
        (r"SELECT E'it\'s \\ s3cr3t', e'\''", "SELECT ?, ?"),
        ("SELECT $$ s3cr3t ' $$, $fn$ a $$ b $fn$", "SELECT ?, ?"),
        (
            "SELECT 42, 3.14, .5, 1e-5, 2E+10, 0x1F, 1_000, -7",
            "SELECT ?, ?, ?, ?, ?, ?, ?, -?",
        ),
        (
            "SELECT X'DEADBEEF', B'0101', N'nat', U&'d\\0061t'",
            "SELECT ?, ?, ?, ?",
        ),
        (
            "SELECT 1 WHERE a = TRUE OR b = false",
            "SELECT ? WHERE a = ? OR b = ?",
        ),
        (
            "SELECT a -- password is hunter2\nFROM t /* s3cr3t /* nested */ still */ WHERE b = 1",
            "SELECT a  \nFROM t   WHERE b = ?",
        ),
        (
            "SELECT * FROM t WHERE id IN (1, 2, 3)",
            "SELECT * FROM t WHERE id IN (?, ?, ?)",
        ),
        ("SELECT ARRAY['s3cr3t'][1]", "SELECT ARRAY[?][?]"),
        (
            "SELECT x::int8, y::text FROM t",
            "SELECT x::int8, y::text FROM t",
        ),
        ("SELECT col1, t2.c3 FROM t2", "SELECT col1, t2.c3 FROM t2"),
        (
            "SELECT DATE '2024-01-01', INTERVAL '1 day'",
            "SELECT DATE ?, INTERVAL ?",
        ),
    ];
    for (sql, want) in cases {
        assert_eq!(text(sql), want, "{sql}");
    }
}

#[test]
fn unterminated_literals_run_to_the_end() {
    assert_eq!(text("SELECT 'abc"), "SELECT ?");
    assert_eq!(text("SELECT E'abc\\"), "SELECT ?");
    assert_eq!(text("SELECT $tag$ abc"), "SELECT ?");
    assert_eq!(text("SELECT \"abc"), "SELECT ?");
    assert_eq!(text("SELECT a /* abc"), "SELECT a  ");
    assert_eq!(text("SELECT a -- abc"), "SELECT a  ");
    assert_eq!(lite("SELECT [abc").text, "SELECT ?");
    assert_eq!(lite("SELECT `abc").text, "SELECT ?");
}

#[test]
fn sqlite_double_quotes_are_kept_only_as_table_names() {
    // SQLite reads "..." as a string when no column has that name.
    let a = lite("SELECT \"name\" FROM \"users\" WHERE email = \"s3cr3t@example.com\"");
    assert_eq!(a.text, "SELECT ? FROM \"users\" WHERE email = ?");
    assert_eq!(a.summary.as_deref(), Some("SELECT \"users\""));
    assert_eq!(a.collection.as_deref(), Some("\"users\""));
    let a = lite("INSERT INTO \"main\".\"users\" (\"a\") VALUES (?)");
    assert_eq!(a.text, "INSERT INTO \"main\".\"users\" (?) VALUES (?)");
    // PostgreSQL: always identifiers.
    let a = pg("SELECT \"name\" FROM \"users\" WHERE email = $1");
    assert_eq!(a.text, "SELECT \"name\" FROM \"users\" WHERE email = $1");
}

#[test]
fn postgres_brackets_are_subscripts_and_sqlite_brackets_names() {
    assert_eq!(pg("SELECT a[1] FROM t").text, "SELECT a[?] FROM t");
    assert_eq!(lite("SELECT [a 1] FROM [t]").text, "SELECT [a 1] FROM [t]");
    assert_eq!(
        parts(&lite("SELECT [a 1] FROM [t]")),
        (Some("SELECT [t]"), Some("SELECT"), Some("[t]"))
    );
}

#[test]
fn summaries_follow_the_conventions_examples() {
    let a = pg("SELECT *\nFROM   wuser_table\nWHERE  username = ?");
    assert_eq!(
        parts(&a),
        (
            Some("SELECT wuser_table"),
            Some("SELECT"),
            Some("wuser_table")
        )
    );
    let a = pg("INSERT INTO shipping_details\n(order_id,\naddress)\nSELECT order_id,\naddress\nFROM orders\nWHERE order_id = ?");
    assert_eq!(
        parts(&a),
        (
            Some("INSERT shipping_details SELECT orders"),
            Some("INSERT"),
            None
        )
    );
    let a = pg("SELECT *\nFROM songs,\nartists\nWHERE songs.artist_id == artists.id");
    assert_eq!(
        parts(&a),
        (Some("SELECT songs artists"), Some("SELECT"), None)
    );
    let a = pg("SELECT order_date\nFROM (SELECT *\nFROM orders o\nJOIN customers c\nON o.customer_id = c.customer_id)");
    assert_eq!(
        parts(&a),
        (Some("SELECT SELECT orders customers"), Some("SELECT"), None)
    );
    let a = pg("SELECT * FROM \"song list\", 'artists'");
    assert_eq!(a.summary.as_deref(), Some("SELECT \"song list\""));
}

#[test]
fn operations_and_collections() {
    let cases: &[(&str, Parts<'static>)] = &[
        (
            "select name from users where id = $1",
            (Some("select users"), Some("select"), Some("users")),
        ),
        (
            "INSERT INTO users(name) VALUES ($1)",
            (Some("INSERT users"), Some("INSERT"), Some("users")),
        ),
        (
            "INSERT OR REPLACE INTO users VALUES (?)",
            (Some("INSERT users"), Some("INSERT"), Some("users")),
        ),
        (
            "UPDATE users SET name = $1 WHERE id = $2",
            (Some("UPDATE users"), Some("UPDATE"), Some("users")),
        ),
        (
            "UPDATE OR IGNORE public.users AS u SET a = 1",
            (Some("UPDATE public.users"), Some("UPDATE"), Some("public.users")),
        ),
        (
            "DELETE FROM users WHERE id IN (SELECT user_id FROM bans)",
            (Some("DELETE users SELECT bans"), Some("DELETE"), None),
        ),
        (
            "DELETE FROM users USING bans WHERE users.id = bans.id",
            (Some("DELETE users bans"), Some("DELETE"), None),
        ),
        (
            "SELECT u.name FROM users u LEFT JOIN orders AS o ON o.uid = u.id WHERE o.total > 10",
            (Some("SELECT users orders"), Some("SELECT"), None),
        ),
        (
            "SELECT EXTRACT(YEAR FROM created), SUBSTRING(name FROM 2) FROM users",
            (Some("SELECT users"), Some("SELECT"), Some("users")),
        ),
        (
            "SELECT * FROM generate_series(1, 3) g, users",
            (Some("SELECT users"), Some("SELECT"), Some("users")),
        ),
        (
            "SELECT count(*) FROM users UNION ALL SELECT count(*) FROM users",
            (Some("SELECT users SELECT users"), Some("SELECT"), Some("users")),
        ),
        (
            "WITH recent AS (SELECT * FROM orders WHERE ts > $1) SELECT * FROM recent",
            (Some("SELECT orders SELECT recent"), Some("SELECT"), None),
        ),
        (
            "WITH moved AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM moved",
            (Some("DELETE a INSERT b SELECT moved"), Some("INSERT"), None),
        ),
        (
            "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT UNIQUE REFERENCES x(id) ON DELETE CASCADE)",
            (Some("CREATE TABLE users"), Some("CREATE TABLE"), Some("users")),
        ),
        (
            "create temp table t(a int)",
            (Some("create temp table t"), Some("create temp table"), Some("t")),
        ),
        (
            "CREATE UNIQUE INDEX IF NOT EXISTS users_email ON users (email) WHERE email IS NOT NULL",
            (Some("CREATE UNIQUE INDEX users"), Some("CREATE UNIQUE INDEX"), Some("users")),
        ),
        (
            "CREATE VIEW active AS SELECT * FROM users WHERE active",
            (Some("CREATE VIEW active SELECT users"), Some("CREATE VIEW"), None),
        ),
        (
            "DROP TABLE IF EXISTS a, b CASCADE",
            (Some("DROP TABLE a b"), Some("DROP TABLE"), None),
        ),
        (
            "ALTER TABLE users ADD COLUMN age INTEGER DEFAULT 0",
            (Some("ALTER TABLE users"), Some("ALTER TABLE"), Some("users")),
        ),
        (
            "TRUNCATE users, orders",
            (Some("TRUNCATE users orders"), Some("TRUNCATE"), None),
        ),
        (
            "DROP INDEX users_email",
            (Some("DROP INDEX"), Some("DROP INDEX"), None),
        ),
        (
            "CREATE EXTENSION IF NOT EXISTS pgcrypto",
            (Some("CREATE EXTENSION"), Some("CREATE EXTENSION"), None),
        ),
        ("BEGIN", (Some("BEGIN"), Some("BEGIN"), None)),
        ("COMMIT;", (Some("COMMIT"), Some("COMMIT"), None)),
        (
            "PRAGMA table_info(users)",
            (Some("PRAGMA"), Some("PRAGMA"), None),
        ),
        (
            "GRANT SELECT ON users TO bob",
            (Some("GRANT"), Some("GRANT"), None),
        ),
        (
            "SET search_path = app, public",
            (Some("SET"), Some("SET"), None),
        ),
        (
            "EXPLAIN ANALYZE SELECT * FROM users",
            (Some("EXPLAIN SELECT users"), Some("EXPLAIN"), Some("users")),
        ),
        (
            "CALL refresh_totals(1, 'x')",
            (Some("CALL refresh_totals"), Some("CALL"), None),
        ),
        (
            "COPY users (id, name) FROM STDIN",
            (Some("COPY users"), Some("COPY"), Some("users")),
        ),
        (
            "MERGE INTO stock s USING deliveries d ON s.id = d.id WHEN MATCHED THEN UPDATE SET n = 1",
            (Some("MERGE stock deliveries"), Some("MERGE"), None),
        ),
        (
            "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET v = excluded.v",
            (Some("INSERT t"), Some("INSERT"), Some("t")),
        ),
        (
            "(SELECT 1) UNION (SELECT 2)",
            (Some("SELECT SELECT"), None, None),
        ),
        ("SELECT 1", (Some("SELECT"), Some("SELECT"), None)),
        ("", (None, None, None)),
        ("  -- only a comment\n", (None, None, None)),
        ("'just a string'", (None, None, None)),
    ];
    for (sql, want) in cases {
        assert_eq!(parts(&pg(sql)), *want, "{sql}");
    }
}

#[test]
fn several_statements_name_an_operation_only_when_they_share_it() {
    let a = pg("CREATE TABLE a (x int); INSERT INTO a VALUES (1);");
    assert_eq!(
        parts(&a),
        (Some("CREATE TABLE a INSERT a"), None, Some("a"))
    );
    assert_eq!(a.text, "CREATE TABLE a (x int); INSERT INTO a VALUES (?);");
    let a = pg("INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)");
    assert_eq!(parts(&a), (Some("INSERT a INSERT b"), Some("INSERT"), None));
    let a = pg(";;SELECT 1;;");
    assert_eq!(parts(&a), (Some("SELECT"), Some("SELECT"), None));
}

#[test]
fn text_and_summary_are_cut() {
    let long = format!("SELECT {} FROM t", "é".repeat(3000));
    let a = pg(&long);
    assert!(a.text.len() <= MAX_TEXT && a.text.len() >= MAX_TEXT - 1);
    assert!(a.text.starts_with("SELECT éé"));
    let many = (0..100)
        .map(|i| format!("table_number_{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let a = pg(&format!("SELECT * FROM {many}"));
    let summary = a.summary.unwrap();
    assert!(summary.len() <= MAX_SUMMARY, "{}", summary.len());
    assert!(summary.ends_with(|c: char| c.is_ascii_digit()), "{summary}");
    // A literal that does not fit is not cut into the text.
    let a = pg(&format!("SELECT {}, 's3cr3t'", "a".repeat(MAX_TEXT - 10)));
    assert!(!a.text.contains("s3cr"), "{}", &a.text[MAX_TEXT - 20..]);
}

#[test]
fn deep_nesting_is_bounded() {
    let sql = format!(
        "SELECT {}1{} FROM t",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let a = pg(&sql);
    assert_eq!(a.summary.as_deref(), Some("SELECT t"));
    assert!(!a.text.contains('1'));
}

// ---------------------------------------------------------------------------------------------
// Properties

/// A secret's text: a marker no template contains, then anything (quotes, backslashes,
/// dollars, newlines, non-ASCII).
fn secret() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            any::<char>(),
            Just('\''),
            Just('"'),
            Just('\\'),
            Just('$'),
            Just('*'),
            Just('/'),
            Just('-'),
            Just('\n'),
            Just(' '),
        ],
        0..24,
    )
    .prop_map(|chars| format!("S3CR{}", String::from_iter(chars)))
}

/// A literal holding `secret`, written as SQL would write it (`kind` picks the form).
fn literal(kind: u8, secret: &str, digits: u64) -> String {
    match kind % 10 {
        0 => format!("'{}'", secret.replace('\'', "''")),
        1 => format!("E'{}'", secret.replace('\\', "\\\\").replace('\'', "\\'")),
        2 => format!("$$ {} $$", secret.replace('$', "")),
        3 => format!("$q${}$q$", secret.replace('$', "")),
        4 => format!("987654{digits}"),
        5 => format!("987654{digits}.5e-3"),
        6 => format!("0x987654{digits:x}"),
        7 => format!("X'987654{digits:x}'"),
        8 => format!("/* {} */", secret.replace('*', "")),
        _ => format!("-- {}\n", secret.replace(['\n', '\r'], "")),
    }
}

const TEMPLATES: &[&str] = &[
    "SELECT a FROM t WHERE c = {}",
    "SELECT {}",
    "{}",
    "INSERT INTO t (a, b) VALUES ({}, $1) RETURNING id",
    "UPDATE t SET a = {} WHERE id = ?",
    "SELECT f({}, {}) FROM t WHERE x IN ({}, ?)",
    "SELECT * FROM t WHERE a = {}::text AND b = :b",
    "DELETE FROM t WHERE a = {};SELECT {}",
    "SELECT \"x\"{}FROM \"t\"",
    "SELECT a, {}",
];

proptest! {
    #[test]
    fn never_panics_on_any_string(sql in any::<String>()) {
        for dialect in [Dialect::Postgres, Dialect::Sqlite] {
            let a = analyze(&sql, dialect);
            prop_assert!(a.text.len() <= MAX_TEXT);
            prop_assert!(a.summary.as_ref().is_none_or(|s| s.len() <= MAX_SUMMARY));
        }
    }

    #[test]
    fn never_panics_on_sql_like_strings(
        sql in "[ -~\u{e9}\u{1F600}]{0,80}",
    ) {
        for dialect in [Dialect::Postgres, Dialect::Sqlite] {
            let _ = analyze(&sql, dialect);
        }
    }

    #[test]
    fn literals_never_reach_the_output(
        template in 0..TEMPLATES.len(),
        kinds in proptest::collection::vec(any::<u8>(), 3),
        secrets in proptest::collection::vec(secret(), 3),
        digits in any::<u64>(),
    ) {
        let mut sql = String::new();
        for (i, piece) in TEMPLATES[template].split("{}").enumerate() {
            if i > 0 {
                sql.push_str(&literal(kinds[(i - 1) % 3], &secrets[(i - 1) % 3], digits));
            }
            sql.push_str(piece);
        }
        for dialect in [Dialect::Postgres, Dialect::Sqlite] {
            let a = analyze(&sql, dialect);
            let all = format!("{} | {:?} | {:?} | {:?}", a.text, a.summary, a.operation, a.collection);
            prop_assert!(!all.contains("S3CR"), "{sql:?} -> {all}");
            prop_assert!(!all.contains("987654"), "{sql:?} -> {all}");
        }
    }

    #[test]
    fn sqlite_double_quoted_strings_never_reach_the_output(s in secret()) {
        let sql = format!("SELECT * FROM users WHERE email = \"{}\"", s.replace('"', "\"\""));
        let a = analyze(&sql, Dialect::Sqlite);
        prop_assert!(!a.text.contains("S3CR"), "{sql:?} -> {}", a.text);
    }

    #[test]
    fn parameterised_text_comes_out_unchanged(
        words in proptest::collection::vec(
            prop_oneof![
                Just("SELECT"), Just("name"), Just("FROM"), Just("users"), Just("WHERE"),
                Just("id"), Just("="), Just("$1"), Just("?"), Just("?2"), Just(":name"),
                Just("@id"), Just(","), Just("("), Just(")"), Just("\"Quoted Name\""),
                Just("t1.col_2"), Just("::"), Just("NULL"), Just("éte"), Just(";"),
            ],
            0..30,
        ),
        separators in proptest::collection::vec(prop_oneof![Just(" "), Just("\n  "), Just("\t")], 30),
    ) {
        let mut sql = String::new();
        for (w, s) in words.iter().zip(&separators) {
            sql.push_str(w);
            sql.push_str(s);
        }
        prop_assert_eq!(analyze(&sql, Dialect::Postgres).text, sql);
    }
}
