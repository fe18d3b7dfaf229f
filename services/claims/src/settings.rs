//! The claims service's section of the config file (`[claims]` in deploy/arflow.toml).
use serde::{Deserialize, Serialize};

use crate::error::Error;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// JSON file of payer rules (timely filing, appeal windows, prior authorization, telehealth,
    /// credentials), layered over the built-in defaults; empty = built-in only. The process
    /// reads it once (claims and the scheduler share the rules) and hands the set over in
    /// [`crate::Options::payer_rules`].
    pub payer_rules_file: String,
}

impl Settings {
    /// Refuses settings the service cannot run with (checked by [`crate::build`]).
    pub fn validate(&self) -> Result<(), Error> {
        if !self.payer_rules_file.is_empty() && self.payer_rules_file.trim().is_empty() {
            return Err(Error::Settings(
                "payer_rules_file is blank: leave it empty for the built-in rules".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_keys() {
        let empty: Settings = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, Settings::default());
        assert!(empty.validate().is_ok());
        assert!(serde_json::from_str::<Settings>(r#"{"payer_rule_file": "x.json"}"#).is_err());
        let blank = Settings {
            payer_rules_file: "  ".into(),
        };
        assert!(blank.validate().is_err());
    }
}
