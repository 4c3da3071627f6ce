//! Keeps secrets out of messages: SAS signatures (`sig=...`) and any known secret value (account
//! key, SAS token), also in their percent-encoded form, as HTTP libraries print URLs in errors.

pub(crate) const REDACTED: &str = "REDACTED";

/// Replaces the value of every `sig=` parameter (case-insensitive) with `REDACTED`.
pub(crate) fn redact_sig(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut rest = 0;
    let mut search = 0;
    while let Some(found) = lower.get(search..).and_then(|tail| tail.find("sig=")) {
        let value_start = search + found + 4;
        let value_end = s
            .get(value_start..)
            .and_then(|tail| {
                tail.find(|c: char| {
                    matches!(c, '&' | ';' | ',' | '"' | '\'' | ')' | '>' | '<') || c.is_whitespace()
                })
            })
            .map_or(s.len(), |i| value_start + i);
        out.push_str(s.get(rest..value_start).unwrap_or_default());
        if value_end > value_start {
            out.push_str(REDACTED);
        }
        rest = value_end;
        search = value_end.max(value_start);
    }
    out.push_str(s.get(rest..).unwrap_or_default());
    out
}

/// Redacts `sig=` values and the given secrets.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    pub(crate) fn new<I: IntoIterator<Item = String>>(secrets: I) -> Self {
        let mut all = Vec::new();
        for s in secrets {
            // Short strings would redact ordinary words; real keys and signatures are long.
            if s.len() < 8 {
                continue;
            }
            let encoded =
                percent_encoding::utf8_percent_encode(&s, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            if encoded != s {
                all.push(encoded);
            }
            all.push(s);
        }
        // Longest first, so a secret containing another is replaced whole.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets: all }
    }

    pub(crate) fn redact(&self, s: &str) -> String {
        let mut out = redact_sig(s);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig_values_are_redacted_wherever_they_appear() {
        assert_eq!(
            redact_sig("error sending request for url (http://h/c?sv=1&sig=abc%2Fdef&se=x)"),
            "error sending request for url (http://h/c?sv=1&sig=REDACTED&se=x)"
        );
        assert_eq!(
            redact_sig("SharedAccessSignature=sv=1&SIG=zzz"),
            "SharedAccessSignature=sv=1&SIG=REDACTED"
        );
        assert_eq!(redact_sig("sig=a sig=b"), "sig=REDACTED sig=REDACTED");
        assert_eq!(redact_sig("no secrets"), "no secrets");
        assert_eq!(redact_sig("sig="), "sig=");
    }

    #[test]
    fn known_secrets_are_redacted_plain_and_percent_encoded() {
        let r = Redactor::new(["ab+cd/ef==gh".to_string()]);
        assert_eq!(
            r.redact("key ab+cd/ef==gh and ab%2Bcd%2Fef%3D%3Dgh"),
            "key REDACTED and REDACTED"
        );
    }
}
