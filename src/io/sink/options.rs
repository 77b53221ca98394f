//! `--sink-opt NAME=VALUE`: settings of the sinks that take them (today `target_file_size`,
//! for Delta Lake sinks). An option no given sink takes is refused, so a typo is never ignored.

use super::SinkSpec;
use crate::{Error, Result};
use std::num::NonZeroU64;

/// The options `--sink-opt` knows, for messages.
const KNOWN: &str = "target_file_size=SIZE (delta: sinks; e.g. 128MiB)";

/// Applies each `NAME=VALUE` of `options` to every sink of `sinks` that takes it.
pub fn apply_sink_options(options: &[String], sinks: &mut [&mut SinkSpec]) -> Result<()> {
    for option in options {
        let refused = |why: String| Error::config("--sink-opt", option, why);
        let (name, value) = option
            .split_once('=')
            .ok_or_else(|| refused(format!("use NAME=VALUE; the options are {KNOWN}")))?;
        let mut taken = false;
        for sink in sinks.iter_mut() {
            taken |= match (name, &mut **sink) {
                ("target_file_size", SinkSpec::Delta(target)) => {
                    target.target_file_size = Some(parse_size("--sink-opt", value)?);
                    true
                }
                _ => false,
            };
        }
        if !taken {
            return Err(refused(format!(
                "no --sink given takes {name}; the options are {KNOWN}"
            )));
        }
    }
    Ok(())
}

/// A size in bytes, `134217728` or with a unit (`128MiB`, `64 MB`), more than zero; `flag`
/// names the setting in the error.
pub fn parse_size(flag: &str, text: &str) -> Result<NonZeroU64> {
    let size: bytesize::ByteSize = text
        .parse()
        .map_err(|e| Error::config(flag, text, format!("not a size ({e}); e.g. 128MiB")))?;
    NonZeroU64::new(size.as_u64())
        .ok_or_else(|| Error::config(flag, text, "a size must be more than 0 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_option_goes_to_the_sinks_that_take_it() {
        let mut delta = SinkSpec::parse("delta:t").unwrap();
        let mut stdout = SinkSpec::Stdout;
        let options = ["target_file_size=1MiB".to_string()];
        apply_sink_options(&options, &mut [&mut delta, &mut stdout]).unwrap();
        let SinkSpec::Delta(target) = delta else {
            panic!("a delta sink")
        };
        assert_eq!(target.target_file_size.unwrap().get(), 1 << 20);
    }

    #[test]
    fn an_option_no_sink_takes_is_refused() {
        for (option, why) in [
            ("target_file_size=1MiB", "no --sink given takes"),
            ("compression", "use NAME=VALUE"),
        ] {
            let mut stdout = SinkSpec::Stdout;
            let options = [option.to_string()];
            let refused = apply_sink_options(&options, &mut [&mut stdout]).unwrap_err();
            assert!(refused.to_string().contains(why), "{refused}");
        }
        assert!(parse_size("--x", "0").is_err());
        assert!(parse_size("--x", "lots").is_err());
        assert_eq!(parse_size("--x", "2 KiB").unwrap().get(), 2048);
    }
}
