//! The command names Redis knows, and a lookup that finds one without allocating: a known
//! name becomes a span name and an attribute value shared by every call.

use std::sync::{Arc, OnceLock};

/// The command names Redis knows (`COMMAND LIST` of Redis 7.0, plus the few added since),
/// subcommands as two words (`CONFIG GET`), sorted. A container's second argument becomes part of
/// the name only when the two words are here: any other may be a value sent by mistake. A known
/// name is shared, not allocated, per call (`Name::span_name`, `Name::shared`); other plain
/// words are names too (module commands: `JSON.SET`), allocated per call.
#[rustfmt::skip]
pub(crate) const KNOWN: [&str; 382] = [
    "ACL", "ACL CAT", "ACL DELUSER", "ACL DRYRUN", "ACL GENPASS", "ACL GETUSER", "ACL HELP",
    "ACL LIST", "ACL LOAD", "ACL LOG", "ACL SAVE", "ACL SETUSER", "ACL USERS", "ACL WHOAMI",
    "APPEND", "ASKING", "AUTH", "BGREWRITEAOF", "BGSAVE", "BITCOUNT", "BITFIELD", "BITFIELD_RO",
    "BITOP", "BITPOS", "BLMOVE", "BLMPOP", "BLPOP", "BRPOP", "BRPOPLPUSH", "BZMPOP", "BZPOPMAX",
    "BZPOPMIN", "CLIENT", "CLIENT CACHING", "CLIENT GETNAME", "CLIENT GETREDIR", "CLIENT HELP",
    "CLIENT ID", "CLIENT INFO", "CLIENT KILL", "CLIENT LIST", "CLIENT NO-EVICT", "CLIENT NO-TOUCH",
    "CLIENT PAUSE", "CLIENT REPLY", "CLIENT SETINFO", "CLIENT SETNAME", "CLIENT TRACKING",
    "CLIENT TRACKINGINFO", "CLIENT UNBLOCK", "CLIENT UNPAUSE", "CLUSTER", "CLUSTER ADDSLOTS",
    "CLUSTER ADDSLOTSRANGE", "CLUSTER BUMPEPOCH", "CLUSTER COUNT-FAILURE-REPORTS",
    "CLUSTER COUNTKEYSINSLOT", "CLUSTER DELSLOTS", "CLUSTER DELSLOTSRANGE", "CLUSTER FAILOVER",
    "CLUSTER FLUSHSLOTS", "CLUSTER FORGET", "CLUSTER GETKEYSINSLOT", "CLUSTER HELP",
    "CLUSTER INFO", "CLUSTER KEYSLOT", "CLUSTER LINKS", "CLUSTER MEET", "CLUSTER MYID",
    "CLUSTER MYSHARDID", "CLUSTER NODES", "CLUSTER REPLICAS", "CLUSTER REPLICATE", "CLUSTER RESET",
    "CLUSTER SAVECONFIG", "CLUSTER SET-CONFIG-EPOCH", "CLUSTER SETSLOT", "CLUSTER SHARDS",
    "CLUSTER SLAVES", "CLUSTER SLOTS", "COMMAND", "COMMAND COUNT", "COMMAND DOCS",
    "COMMAND GETKEYS", "COMMAND GETKEYSANDFLAGS", "COMMAND HELP", "COMMAND INFO", "COMMAND LIST",
    "CONFIG", "CONFIG GET", "CONFIG HELP", "CONFIG RESETSTAT", "CONFIG REWRITE", "CONFIG SET",
    "COPY", "DBSIZE", "DEBUG", "DECR", "DECRBY", "DEL", "DISCARD", "DUMP", "ECHO", "EVAL",
    "EVALSHA", "EVALSHA_RO", "EVAL_RO", "EXEC", "EXISTS", "EXPIRE", "EXPIREAT", "EXPIRETIME",
    "FAILOVER", "FCALL", "FCALL_RO", "FLUSHALL", "FLUSHDB", "FUNCTION", "FUNCTION DELETE",
    "FUNCTION DUMP", "FUNCTION FLUSH", "FUNCTION HELP", "FUNCTION KILL", "FUNCTION LIST",
    "FUNCTION LOAD", "FUNCTION RESTORE", "FUNCTION STATS", "GEOADD", "GEODIST", "GEOHASH",
    "GEOPOS", "GEORADIUS", "GEORADIUSBYMEMBER", "GEORADIUSBYMEMBER_RO", "GEORADIUS_RO",
    "GEOSEARCH", "GEOSEARCHSTORE", "GET", "GETBIT", "GETDEL", "GETEX", "GETRANGE", "GETSET",
    "HDEL", "HELLO", "HEXISTS", "HEXPIRE", "HEXPIREAT", "HEXPIRETIME", "HGET", "HGETALL",
    "HGETDEL", "HGETEX", "HINCRBY", "HINCRBYFLOAT", "HKEYS", "HLEN", "HMGET", "HMSET", "HPERSIST",
    "HPEXPIRE", "HPEXPIREAT", "HPEXPIRETIME", "HPTTL", "HRANDFIELD", "HSCAN", "HSET", "HSETEX",
    "HSETNX", "HSTRLEN", "HTTL", "HVALS", "INCR", "INCRBY", "INCRBYFLOAT", "INFO", "KEYS",
    "LASTSAVE", "LATENCY", "LATENCY DOCTOR", "LATENCY GRAPH", "LATENCY HELP", "LATENCY HISTOGRAM",
    "LATENCY HISTORY", "LATENCY LATEST", "LATENCY RESET", "LCS", "LINDEX", "LINSERT", "LLEN",
    "LMOVE", "LMPOP", "LOLWUT", "LPOP", "LPOS", "LPUSH", "LPUSHX", "LRANGE", "LREM", "LSET",
    "LTRIM", "MEMORY", "MEMORY DOCTOR", "MEMORY HELP", "MEMORY MALLOC-STATS", "MEMORY PURGE",
    "MEMORY STATS", "MEMORY USAGE", "MGET", "MIGRATE", "MODULE", "MODULE HELP", "MODULE LIST",
    "MODULE LOAD", "MODULE LOADEX", "MODULE UNLOAD", "MONITOR", "MOVE", "MSET", "MSETNX", "MULTI",
    "OBJECT", "OBJECT ENCODING", "OBJECT FREQ", "OBJECT HELP", "OBJECT IDLETIME",
    "OBJECT REFCOUNT", "PERSIST", "PEXPIRE", "PEXPIREAT", "PEXPIRETIME", "PFADD", "PFCOUNT",
    "PFDEBUG", "PFMERGE", "PFSELFTEST", "PING", "PSETEX", "PSUBSCRIBE", "PSYNC", "PTTL", "PUBLISH",
    "PUBSUB", "PUBSUB CHANNELS", "PUBSUB HELP", "PUBSUB NUMPAT", "PUBSUB NUMSUB",
    "PUBSUB SHARDCHANNELS", "PUBSUB SHARDNUMSUB", "PUNSUBSCRIBE", "QUIT", "RANDOMKEY", "READONLY",
    "READWRITE", "RENAME", "RENAMENX", "REPLCONF", "REPLICAOF", "RESET", "RESTORE",
    "RESTORE-ASKING", "ROLE", "RPOP", "RPOPLPUSH", "RPUSH", "RPUSHX", "SADD", "SAVE", "SCAN",
    "SCARD", "SCRIPT", "SCRIPT DEBUG", "SCRIPT EXISTS", "SCRIPT FLUSH", "SCRIPT HELP",
    "SCRIPT KILL", "SCRIPT LOAD", "SDIFF", "SDIFFSTORE", "SELECT", "SET", "SETBIT", "SETEX",
    "SETNX", "SETRANGE", "SHUTDOWN", "SINTER", "SINTERCARD", "SINTERSTORE", "SISMEMBER", "SLAVEOF",
    "SLOWLOG", "SLOWLOG GET", "SLOWLOG HELP", "SLOWLOG LEN", "SLOWLOG RESET", "SMEMBERS",
    "SMISMEMBER", "SMOVE", "SORT", "SORT_RO", "SPOP", "SPUBLISH", "SRANDMEMBER", "SREM", "SSCAN",
    "SSUBSCRIBE", "STRLEN", "SUBSCRIBE", "SUBSTR", "SUNION", "SUNIONSTORE", "SUNSUBSCRIBE",
    "SWAPDB", "SYNC", "TIME", "TOUCH", "TTL", "TYPE", "UNLINK", "UNSUBSCRIBE", "UNWATCH", "WAIT",
    "WAITAOF", "WATCH", "XACK", "XADD", "XAUTOCLAIM", "XCLAIM", "XDEL", "XGROUP", "XGROUP CREATE",
    "XGROUP CREATECONSUMER", "XGROUP DELCONSUMER", "XGROUP DESTROY", "XGROUP HELP", "XGROUP SETID",
    "XINFO", "XINFO CONSUMERS", "XINFO GROUPS", "XINFO HELP", "XINFO STREAM", "XLEN", "XPENDING",
    "XRANGE", "XREAD", "XREADGROUP", "XREVRANGE", "XSETID", "XTRIM", "ZADD", "ZCARD", "ZCOUNT",
    "ZDIFF", "ZDIFFSTORE", "ZINCRBY", "ZINTER", "ZINTERCARD", "ZINTERSTORE", "ZLEXCOUNT", "ZMPOP",
    "ZMSCORE", "ZPOPMAX", "ZPOPMIN", "ZRANDMEMBER", "ZRANGE", "ZRANGEBYLEX", "ZRANGEBYSCORE",
    "ZRANGESTORE", "ZRANK", "ZREM", "ZREMRANGEBYLEX", "ZREMRANGEBYRANK", "ZREMRANGEBYSCORE",
    "ZREVRANGE", "ZREVRANGEBYLEX", "ZREVRANGEBYSCORE", "ZREVRANK", "ZSCAN", "ZSCORE", "ZUNION",
    "ZUNIONSTORE",
];

/// Slots of the [`KNOWN`] lookup table: a power of two, over twice as many as names.
const SLOTS: usize = 1024;

/// [`KNOWN`] as a hash table (open addressing, linear probing) and as shared strings, made on
/// first use: a lookup is one short hash and about one comparison.
pub(crate) struct Index {
    /// Index + 1 into [`KNOWN`]; 0 for an empty slot.
    slots: Box<[u16; SLOTS]>,
    pub(crate) shared: Box<[Arc<str>]>,
    /// Whether the name has subcommands (`CONFIG`: `CONFIG GET` follows it in [`KNOWN`]).
    pub(crate) container: Box<[bool]>,
}

pub(crate) fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut slots = Box::new([0_u16; SLOTS]);
        for (i, name) in KNOWN.iter().enumerate() {
            let mut slot = hash(name.as_bytes());
            while slots[slot] != 0 {
                slot = (slot + 1) % SLOTS;
            }
            // KNOWN has far fewer than u16::MAX names (checked by a test).
            slots[slot] = u16::try_from(i + 1).unwrap_or(0);
        }
        Index {
            slots,
            shared: KNOWN.iter().map(|&k| Arc::from(k)).collect(),
            container: KNOWN
                .iter()
                .zip(KNOWN.iter().skip(1).map(Some).chain([None]))
                .map(|(name, next)| {
                    next.and_then(|n| n.strip_prefix(name))
                        .is_some_and(|rest| rest.starts_with(' '))
                })
                .collect(),
        }
    })
}

/// FNV-1a, folded to a slot.
fn hash(bytes: &[u8]) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    (h ^ (h >> 16)) as usize % SLOTS
}

/// The index of `name` in [`KNOWN`].
pub(crate) fn known(name: &str) -> Option<usize> {
    let slots = &index().slots;
    let mut slot = hash(name.as_bytes());
    loop {
        let i = usize::from(slots[slot]).checked_sub(1)?;
        if KNOWN[i] == name {
            return Some(i);
        }
        slot = (slot + 1) % SLOTS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_are_sorted_and_two_words_belong_to_containers() {
        assert!(KNOWN.windows(2).all(|w| w[0] < w[1]));
        let containers: Vec<&str> = KNOWN
            .iter()
            .zip(&index().container)
            .filter(|(_, c)| **c)
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(
            containers,
            [
                "ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "FUNCTION", "LATENCY", "MEMORY",
                "MODULE", "OBJECT", "PUBSUB", "SCRIPT", "SLOWLOG", "XGROUP", "XINFO"
            ]
        );
        for name in KNOWN {
            assert!(name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b"_- ".contains(&b)));
            if let Some((container, _)) = name.split_once(' ') {
                assert!(containers.contains(&container), "{name}");
            }
        }
        assert!(KNOWN.len() * 2 < SLOTS && SLOTS < usize::from(u16::MAX));
        for (i, name) in KNOWN.iter().enumerate() {
            assert_eq!(known(name), Some(i), "{name}");
        }
        assert_eq!(known("NOT-A-COMMAND"), None);
        assert_eq!(known(""), None);
    }
}
