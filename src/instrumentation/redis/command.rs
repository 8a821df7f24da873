//! What a redis command is called, read from its first argument (and, for container commands,
//! its second) and never from any other: every other argument is a value or a key.
//!
//! Commands reach the wrapper either as a [`redis::Cmd`] (its arguments one by one) or, on the
//! sync connection's raw path, as the packed RESP bytes; both become a [`Shape`].

use super::names::{index, known, KNOWN};
use redis::{Arg, Cmd};
use std::borrow::Cow;
use std::sync::Arc;

/// The operation name of a command whose name is not a plain word (or is missing).
pub(crate) const OTHER: &str = "_OTHER";
/// The longest command name taken; a longer first argument is not a command name.
const MAX_NAME: usize = 32;
/// The longest `db.query.text`; a longer one ends with `...` after its last whole command
/// or argument.
pub(crate) const MAX_TEXT: usize = 2048;
/// Where `db.query.text` is cut.
const CUT: &str = "...";

/// One command as the wrapper reads it: its name, its second argument (only ever compared
/// with the known subcommands) and how many arguments it has, the name included.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Shape<'a> {
    pub(crate) name: Option<&'a [u8]>,
    pub(crate) second: Option<&'a [u8]>,
    pub(crate) args: usize,
}

impl<'a> Shape<'a> {
    /// The shape of `cmd`; a cursor placeholder is an argument like any other.
    pub(crate) fn of_cmd(cmd: &'a Cmd) -> Self {
        let mut args = cmd.args_iter();
        let count = args.len();
        let mut simple = || match args.next() {
            Some(Arg::Simple(bytes)) => Some(bytes),
            _ => None,
        };
        let name = simple();
        let second = simple();
        Shape {
            name,
            second,
            args: count,
        }
    }
}

/// A command's operation name, built on the stack: the name in upper case (`GET`), the two
/// words of a known container command (`CONFIG GET`), or `_OTHER`.
#[derive(Clone, Copy)]
pub(crate) struct Name {
    buf: [u8; 2 * MAX_NAME + 1],
    len: usize,
    /// Whether the second argument is part of the name.
    pub(crate) two_words: bool,
    /// The name's index in [`KNOWN`].
    known: Option<usize>,
}

impl Name {
    /// The name of `shape`'s command.
    pub(crate) fn of(shape: &Shape<'_>) -> Name {
        let mut name = Name {
            buf: [0; 2 * MAX_NAME + 1],
            len: 0,
            two_words: false,
            known: None,
        };
        match shape.name.filter(|n| is_word(n)) {
            Some(first) => name.push_upper(first),
            None => {
                name.push_upper(OTHER.as_bytes());
                return name;
            }
        }
        name.known = known(name.as_str());
        let container = name.known.is_some_and(|i| index().container[i]);
        if let Some(second) = shape.second.filter(|s| container && is_word(s)) {
            let first_len = name.len;
            name.buf[first_len] = b' ';
            name.len += 1;
            name.push_upper(second);
            match known(name.as_str()) {
                Some(i) => {
                    name.two_words = true;
                    name.known = Some(i);
                }
                None => name.len = first_len,
            }
        }
        name
    }

    fn push_upper(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        for (to, from) in self.buf[self.len..end].iter_mut().zip(bytes) {
            *to = from.to_ascii_uppercase();
        }
        self.len = end;
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII bytes are ever pushed (`is_word`, `OTHER`, b' ').
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or(OTHER)
    }

    /// The name's index among the known names (`names::KNOWN`).
    pub(crate) fn known(&self) -> Option<usize> {
        self.known
    }

    /// The name as a span name: borrowed when known, or `_OTHER`.
    pub(crate) fn span_name(&self) -> Cow<'static, str> {
        match self.known {
            Some(i) => Cow::Borrowed(KNOWN[i]),
            None if self.as_str() == OTHER => Cow::Borrowed(OTHER),
            None => Cow::Owned(self.as_str().to_owned()),
        }
    }

    /// The name as a shared string: the process's one copy when known.
    pub(crate) fn shared(&self) -> Arc<str> {
        match self.known {
            Some(i) => index().shared[i].clone(),
            None => Arc::from(self.as_str()),
        }
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command name: 1 to 32 bytes, a letter first, then letters, digits, `_`, `-` or `.`
/// (module commands: `JSON.SET`).
fn is_word(bytes: &[u8]) -> bool {
    matches!(bytes.first(), Some(b) if b.is_ascii_alphabetic())
        && bytes.len() <= MAX_NAME
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Builds `db.query.text`: each command as its name followed by one `?` per other argument
/// (`SET ? ?`), commands separated by `; `, at most [`MAX_TEXT`] bytes.
#[derive(Debug, Default)]
pub(crate) struct Text {
    out: String,
    full: bool,
}

impl Text {
    /// Appends one command.
    pub(crate) fn command(&mut self, name: &Name, args: usize) {
        let values = args.saturating_sub(1 + usize::from(name.two_words));
        if !self.out.is_empty() && !self.push("; ") {
            return;
        }
        if !self.push(name.as_str()) {
            return;
        }
        for _ in 0..values {
            if !self.push(" ?") {
                return;
            }
        }
    }

    /// Appends `word` (`MULTI`, `EXEC`) as a command of its own.
    pub(crate) fn word(&mut self, word: &str) {
        if !self.out.is_empty() && !self.push("; ") {
            return;
        }
        self.push(word);
    }

    /// Appends `piece` if the result and the cut mark still fit; otherwise appends the cut mark
    /// once and returns false from then on.
    fn push(&mut self, piece: &str) -> bool {
        if self.full {
            return false;
        }
        if self.out.len() + piece.len() + CUT.len() > MAX_TEXT {
            self.out.push_str(CUT);
            self.full = true;
            return false;
        }
        self.out.push_str(piece);
        true
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// The commands packed in RESP bytes (`*<n>\r\n` then `n` times `$<len>\r\n<bytes>\r\n`), as
/// the sync connection hands them over. Malformed bytes end the iteration with a shape that
/// has no name.
#[derive(Debug, Clone)]
pub(crate) struct Packed<'a> {
    rest: &'a [u8],
}

impl<'a> Packed<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Packed { rest: bytes }
    }

    fn command(&mut self) -> Option<Shape<'a>> {
        let count = self.header(b'*')?;
        let mut shape = Shape {
            args: count,
            ..Shape::default()
        };
        for i in 0..count {
            let len = self.header(b'$')?;
            let bytes = self.rest.get(..len)?;
            let after = self.rest.get(len..)?;
            self.rest = after.strip_prefix(b"\r\n")?;
            match i {
                0 => shape.name = Some(bytes),
                1 => shape.second = Some(bytes),
                _ => {}
            }
        }
        Some(shape)
    }

    /// Reads `<marker><decimal>\r\n`.
    fn header(&mut self, marker: u8) -> Option<usize> {
        let rest = self.rest.strip_prefix(&[marker])?;
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 10 {
            return None;
        }
        let value = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
        self.rest = rest[digits..].strip_prefix(b"\r\n")?;
        Some(value)
    }
}

impl<'a> Iterator for Packed<'a> {
    type Item = Shape<'a>;

    fn next(&mut self) -> Option<Shape<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        match self.command() {
            Some(shape) => Some(shape),
            None => {
                self.rest = &[];
                Some(Shape::default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(args: &[&str]) -> String {
        let mut cmd = Cmd::new();
        for a in args {
            cmd.arg(*a);
        }
        Name::of(&Shape::of_cmd(&cmd)).as_str().to_owned()
    }

    #[test]
    fn known_names_are_shared_and_others_owned() {
        let mut cmd = Cmd::new();
        cmd.arg("get").arg("k");
        let name = Name::of(&Shape::of_cmd(&cmd));
        assert!(matches!(name.span_name(), Cow::Borrowed("GET")));
        assert!(Arc::ptr_eq(&name.shared(), &name.shared()));
        let mut cmd = Cmd::new();
        cmd.arg("json.set").arg("k");
        let name = Name::of(&Shape::of_cmd(&cmd));
        assert!(matches!(name.span_name(), Cow::Owned(n) if n == "JSON.SET"));
        assert_eq!(&*name.shared(), "JSON.SET");
        let garbage = Name::of(&Shape::default());
        assert!(matches!(garbage.span_name(), Cow::Borrowed(OTHER)));
    }

    #[test]
    fn names_are_the_first_argument_in_upper_case() {
        assert_eq!(name_of(&["GET", "key"]), "GET");
        assert_eq!(name_of(&["hgetall", "key"]), "HGETALL");
        assert_eq!(name_of(&["json.set", "k", "$", "1"]), "JSON.SET");
        assert_eq!(name_of(&["PING"]), "PING");
    }

    #[test]
    fn container_commands_take_a_known_subcommand_only() {
        assert_eq!(name_of(&["config", "get", "maxmemory"]), "CONFIG GET");
        assert_eq!(name_of(&["CLIENT", "SETNAME", "x"]), "CLIENT SETNAME");
        assert_eq!(name_of(&["acl", "setuser", "u", ">pw"]), "ACL SETUSER");
        assert_eq!(name_of(&["XINFO", "STREAM", "s"]), "XINFO STREAM");
        // An unknown second argument may be a value: left out.
        assert_eq!(name_of(&["CONFIG", "hunter2"]), "CONFIG");
        assert_eq!(name_of(&["CLIENT"]), "CLIENT");
        // Not a container: the second argument is a key.
        assert_eq!(name_of(&["GET", "list"]), "GET");
    }

    #[test]
    fn garbage_names_are_other() {
        assert_eq!(name_of(&[]), OTHER);
        assert_eq!(name_of(&[""]), OTHER);
        assert_eq!(name_of(&["s3cr3t value"]), OTHER);
        assert_eq!(name_of(&["1GET"]), OTHER);
        assert_eq!(name_of(&["user:42"]), OTHER);
        assert_eq!(name_of(&["GÉT"]), OTHER);
        assert_eq!(name_of(&[&"A".repeat(33)]), OTHER);
        assert_eq!(name_of(&[&"A".repeat(32)]), "A".repeat(32));
        let mut cmd = Cmd::new();
        cmd.arg(&[0xffu8, 0xfe][..]);
        assert_eq!(Name::of(&Shape::of_cmd(&cmd)).as_str(), OTHER);
    }

    #[test]
    fn text_replaces_every_argument() {
        let mut cmd = Cmd::new();
        cmd.arg("SET").arg("secret-key").arg("secret-value");
        let shape = Shape::of_cmd(&cmd);
        let mut text = Text::default();
        text.command(&Name::of(&shape), shape.args);
        assert_eq!(text.finish(), "SET ? ?");

        let mut cmd = Cmd::new();
        cmd.arg("CONFIG").arg("SET").arg("requirepass").arg("pw");
        let shape = Shape::of_cmd(&cmd);
        let mut text = Text::default();
        text.word("MULTI");
        text.command(&Name::of(&shape), shape.args);
        text.word("EXEC");
        assert_eq!(text.finish(), "MULTI; CONFIG SET ? ?; EXEC");
    }

    #[test]
    fn text_is_cut_at_a_whole_piece() {
        let mut text = Text::default();
        let name = Name::of(&Shape {
            name: Some(b"MSET"),
            ..Shape::default()
        });
        text.command(&name, 10_000);
        text.command(&name, 3);
        let out = text.finish();
        assert!(out.len() <= MAX_TEXT, "{}", out.len());
        assert!(out.starts_with("MSET ? ?"));
        assert!(out.ends_with(" ?..."), "{out}");
        assert_eq!(out.matches("MSET").count(), 1);
    }

    #[test]
    fn packed_bytes_parse_like_cmds() {
        let mut set = Cmd::new();
        set.arg("set").arg("k").arg("v\r\n*1\r\n$4\r\nEVIL");
        let mut get = Cmd::new();
        get.arg("GET").arg("k");
        let mut bytes = set.get_packed_command();
        bytes.extend(get.get_packed_command());
        let shapes: Vec<_> = Packed::new(&bytes).collect();
        assert_eq!(shapes.len(), 2);
        assert_eq!(Name::of(&shapes[0]).as_str(), "SET");
        assert_eq!(shapes[0].args, 3);
        assert_eq!(Name::of(&shapes[1]).as_str(), "GET");
        assert_eq!(shapes[1].args, 2);
    }

    #[test]
    fn malformed_packed_bytes_end_with_a_nameless_shape() {
        for bytes in [
            &b"*2\r\n$3\r\nGET\r\n"[..],
            b"*1\r\n$30\r\nGET\r\n",
            b"PING\r\n",
            b"*99999999999\r\n",
            b"*1\r\n$-1\r\n",
        ] {
            let shapes: Vec<_> = Packed::new(bytes).collect();
            assert_eq!(shapes.len(), 1, "{bytes:?}");
            assert_eq!(Name::of(&shapes[0]).as_str(), OTHER, "{bytes:?}");
        }
        assert_eq!(Packed::new(b"").count(), 0);
    }
}
