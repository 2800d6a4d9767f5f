//! Which upstream hosts `dpx serve` may contact for a client. Prefix mode and
//! `?ns=` let any local client name a host; without this check a web page or
//! container on the machine could make dpx reach the LAN or loopback services.

use std::collections::BTreeSet;

use super::{ApiError, ErrorCode};

/// The `[serve] registries` allow-list. Which addresses a host may lead to is
/// checked where connections are made, on every connection (the registry
/// client's address rule): a lookup here could be answered differently then.
pub struct Egress {
    /// `[serve] registries`: when set, the only hosts allowed.
    allow_list: Option<BTreeSet<String>>,
}

impl Egress {
    pub fn new(allow_list: Option<impl IntoIterator<Item = String>>) -> Egress {
        Egress {
            allow_list: allow_list.map(|l| l.into_iter().map(|h| h.to_ascii_lowercase()).collect()),
        }
    }

    /// Ok if dpx may contact `host` (`name[:port]`) for a client; a 403 `DENIED` saying
    /// which config key allows it otherwise.
    pub fn check(&self, host: &str) -> Result<(), ApiError> {
        let key = host.to_ascii_lowercase();
        if let Some(list) = &self.allow_list
            && !list.contains(&key)
        {
            return Err(denied(format!(
                "dpx serve does not contact {host}: it is not in the [serve] registries allow-list \
                 of the config file; add \"{host}\" there to allow it"
            )));
        }
        Ok(())
    }
}

fn denied(message: String) -> ApiError {
    ApiError::new(ErrorCode::Denied, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allow_list_admits_only_its_hosts() {
        let egress = Egress::new(Some(vec!["127.0.0.1:5001".to_string()]));
        assert!(egress.check("127.0.0.1:5001").is_ok());
        let err = egress.check("127.0.0.1:5003").unwrap_err();
        assert!(
            err.message.contains("[serve] registries"),
            "{}",
            err.message
        );
        assert!(egress.check("ghcr.io").is_err());
        assert!(Egress::new(None::<Vec<String>>).check("ghcr.io").is_ok());
    }
}
