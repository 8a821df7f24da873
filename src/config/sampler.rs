//! Trace samplers, named as in `OTEL_TRACES_SAMPLER`.

use opentelemetry_sdk::trace::Sampler as SdkSampler;

/// Which traces are recorded and exported, for
/// [`TelemetryConfig::with_sampler`](crate::TelemetryConfig::with_sampler) (example:
/// [service identity and sampling](crate::TelemetryConfig#service-identity-and-sampling)).
///
/// The variants are the values of `OTEL_TRACES_SAMPLER` (matched case-insensitively there).
/// Ratios are in `0.0..=1.0`; anything else is a start-up error.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum Sampler {
    /// `always_on`: record every trace.
    AlwaysOn,
    /// `always_off`: record no trace.
    AlwaysOff,
    /// `traceidratio`: record this fraction of traces, chosen by trace id.
    TraceIdRatio(f64),
    /// `parentbased_always_on` (the default): follow the parent's decision; record new roots.
    #[default]
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`: follow the parent's decision; drop new roots.
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio`: follow the parent's decision; sample new roots by ratio.
    ParentBasedTraceIdRatio(f64),
}

pub(crate) const SAMPLER_NAMES: &str = "one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio";

impl Sampler {
    /// Parses an `OTEL_TRACES_SAMPLER` value (case-insensitive). `ratio` is the already
    /// validated `OTEL_TRACES_SAMPLER_ARG`, 1.0 when unset (the spec's default).
    pub(crate) fn from_env_name(name: &str, ratio: Option<f64>) -> Option<Sampler> {
        let ratio = ratio.unwrap_or(1.0);
        Some(match name.to_ascii_lowercase().as_str() {
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::TraceIdRatio(ratio),
            "parentbased_always_on" => Sampler::ParentBasedAlwaysOn,
            "parentbased_always_off" => Sampler::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Sampler::ParentBasedTraceIdRatio(ratio),
            _ => return None,
        })
    }

    pub(crate) fn ratio(&self) -> Option<f64> {
        match *self {
            Sampler::TraceIdRatio(r) | Sampler::ParentBasedTraceIdRatio(r) => Some(r),
            _ => None,
        }
    }

    pub(crate) fn to_sdk(self) -> SdkSampler {
        match self {
            Sampler::AlwaysOn => SdkSampler::AlwaysOn,
            Sampler::AlwaysOff => SdkSampler::AlwaysOff,
            Sampler::TraceIdRatio(r) => SdkSampler::TraceIdRatioBased(r),
            Sampler::ParentBasedAlwaysOn => SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOn)),
            Sampler::ParentBasedAlwaysOff => {
                SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOff))
            }
            Sampler::ParentBasedTraceIdRatio(r) => {
                SdkSampler::ParentBased(Box::new(SdkSampler::TraceIdRatioBased(r)))
            }
        }
    }
}
