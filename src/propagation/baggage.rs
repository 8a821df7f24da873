//! TEMPORARY stand-in, replaced by the strict parser.
use opentelemetry::baggage::Baggage;
pub(super) fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> (Baggage, usize) {
    let mut b = Baggage::new();
    for v in values {
        for m in v.split(',') {
            if let Some((k, v)) = m.split_once('=') {
                b.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
    }
    (b, 0)
}
pub(super) fn format(b: &Baggage) -> Option<String> {
    (!b.is_empty()).then(|| {
        b.iter()
            .map(|(k, (v, _))| format!("{}={}", k, v))
            .collect::<Vec<_>>()
            .join(",")
    })
}
