//! Which new passwords are too easy to guess.
//!
//! NIST SP 800-63B-4 §3.1.1.2 asks verifiers to refuse passwords found in a
//! blocklist of common, expected or compromised values, including
//! context-specific words such as the user's own name, and to impose no
//! composition rules; OWASP ASVS 5.0 V6.2.4 asks for at least the top 3000
//! passwords, V6.2.11 for a documented list of context-specific words. zxcvbn
//! does both: it knows some 30 000 common passwords plus English words,
//! names, keyboard patterns, repeats, sequences and dates, takes the
//! account's own words as one more dictionary, and estimates how many
//! guesses the password would take. A password below the policy's minimum
//! score is refused, with zxcvbn's advice.
//!
//! The check applies wherever a new password is chosen (sign-up, change,
//! reset), never at login: a policy made stricter later must not lock
//! anyone out.

use zxcvbn::feedback::Suggestion;
use zxcvbn::matching::patterns::MatchPattern;

use crate::email::EmailAddress;
use crate::password::{Password, PasswordError};
use crate::user::{Account, DisplayName};

/// Words of the service itself, part of every [`PasswordContext`].
const SERVICE_WORDS: &[&str] = &["gatehouse"];

/// Shorter pieces of an address or name are not context words: they would
/// match inside any ordinary word.
const MIN_WORD_CHARS: usize = 3;

/// A minimum score the policy cannot have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the minimum password score must be between {min} and {max}", min = PasswordPolicy::LOWEST_MIN_SCORE, max = PasswordPolicy::HIGHEST_MIN_SCORE)]
pub struct ScoreOutOfRange;

/// How hard to guess a new password must be: a zxcvbn score from 1 to 4,
/// where each step is about a hundredfold more guesses (1: more than 10³,
/// 2: more than 10⁶, 3: more than 10⁸, 4: more than 10¹⁰).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    min_score: u8,
}

impl PasswordPolicy {
    /// The default: more than 10⁸ guesses, zxcvbn's own advice for "strong
    /// enough". It refuses `password`, `12345678`, `aaaaaaaa`, `qwertyuiop`
    /// and an address or name of the account, and accepts a passphrase of
    /// three ordinary words (`correct horse battery`).
    pub const DEFAULT_MIN_SCORE: u8 = 3;
    /// Score 1 still refuses the most common passwords and the account's own
    /// words; 0 would refuse nothing, which NIST SP 800-63B-4 does not allow.
    pub const LOWEST_MIN_SCORE: u8 = 1;
    pub const HIGHEST_MIN_SCORE: u8 = 4;

    /// A policy refusing new passwords that score below `min_score`.
    ///
    /// # Errors
    /// [`ScoreOutOfRange`] outside 1 to 4.
    pub const fn new(min_score: u8) -> Result<Self, ScoreOutOfRange> {
        if min_score < Self::LOWEST_MIN_SCORE || min_score > Self::HIGHEST_MIN_SCORE {
            return Err(ScoreOutOfRange);
        }
        Ok(Self { min_score })
    }

    #[must_use]
    pub const fn min_score(&self) -> u8 {
        self.min_score
    }

    /// Whether `password` may be chosen by the account `context` describes.
    /// Only its NFKC form is judged: that is what is stored.
    ///
    /// # Errors
    /// [`PasswordError::FromAccountDetails`] when it is too weak because it
    /// is built from the account's own words; [`PasswordError::TooGuessable`]
    /// otherwise.
    pub fn check(&self, password: &Password, context: &PasswordContext) -> Result<(), PasswordError> {
        let inputs: Vec<&str> = context.words.iter().map(String::as_str).collect();
        let entropy = zxcvbn::zxcvbn(password.expose(), &inputs);
        if u8::from(entropy.score()) >= self.min_score {
            return Ok(());
        }
        // zxcvbn lower-cases the context words and reports the word matched.
        let from_context = entropy
            .sequence()
            .iter()
            .any(|m| matches!(&m.pattern, MatchPattern::Dictionary(d) if context.words.contains(&d.matched_word)));
        if from_context {
            return Err(PasswordError::FromAccountDetails);
        }
        let mut advice: Vec<String> = Vec::new();
        if let Some(feedback) = entropy.feedback() {
            advice.extend(feedback.warning().map(|w| w.to_string()));
            advice.extend(feedback.suggestions().iter().map(ToString::to_string));
        }
        if advice.is_empty() {
            // zxcvbn gives feedback only up to score 2; a stricter policy still says what helps.
            advice.push(Suggestion::AddAnotherWordOrTwo.to_string());
        }
        Err(PasswordError::TooGuessable { advice: advice.join(" ") })
    }
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_score: Self::DEFAULT_MIN_SCORE }
    }
}

/// The words a password must not be built from (OWASP ASVS 5.0 V6.2.11):
/// each of the account's addresses whole, its local part and the local
/// part's pieces (split at `.`, `_`, `-`, `+`), its domain and the domain's
/// first label; the display name and its words; and the service's name.
/// Pieces shorter than three characters are left out. All lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordContext {
    words: Vec<String>,
}

impl Default for PasswordContext {
    fn default() -> Self {
        Self { words: SERVICE_WORDS.iter().map(|w| (*w).to_owned()).collect() }
    }
}

impl PasswordContext {
    /// The context of an existing account: every login email and the display name.
    #[must_use]
    pub fn of_account(account: &Account) -> Self {
        account.emails().iter().fold(Self::default(), |c, e| c.with_email(&e.email)).with_name(account.display_name())
    }

    /// Adds an address and its parts.
    #[must_use]
    pub fn with_email(mut self, email: &EmailAddress) -> Self {
        let address = email.as_str();
        self.add(address);
        if let Some((local, domain)) = address.split_once('@') {
            self.add(local);
            for piece in local.split(['.', '_', '-', '+']) {
                self.add(piece);
            }
            self.add(domain);
            self.add(domain.split('.').next().unwrap_or_default());
        }
        self
    }

    /// Adds a display name and its words.
    #[must_use]
    pub fn with_name(mut self, name: &DisplayName) -> Self {
        let name = name.as_str();
        self.add(name);
        for word in name.split(|c: char| !c.is_alphanumeric()) {
            self.add(word);
        }
        self
    }

    fn add(&mut self, word: &str) {
        let word = word.trim().to_lowercase();
        if word.chars().count() >= MIN_WORD_CHARS && !self.words.contains(&word) {
            self.words.push(word);
        }
    }

    /// The words, for tests and diagnostics.
    #[must_use]
    pub fn words(&self) -> &[String] {
        &self.words
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn email(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    fn check(policy: PasswordPolicy, password: &str, context: &PasswordContext) -> Result<(), PasswordError> {
        policy.check(&Password::new(password.to_owned()).unwrap(), context)
    }

    fn ann() -> PasswordContext {
        PasswordContext::default()
            .with_email(&email("ann.smith@example.com"))
            .with_name(&DisplayName::parse("Ann Smith").unwrap())
    }

    /// NIST SP 800-63B-4 §3.1.1.2 (blocklist of common passwords); OWASP ASVS
    /// 5.0 V6.2.4 (at least the top 3000 passwords).
    #[test]
    fn common_passwords_are_refused_with_advice_nist_800_63b_3_1_1_2() {
        for common in ["password", "12345678", "aaaaaaaa", "qwertyuiop", "iloveyou", "password1", "P@ssw0rd"] {
            let refused = check(PasswordPolicy::default(), common, &ann());
            let Err(PasswordError::TooGuessable { advice }) = refused else {
                panic!("{common} should be too guessable, got {refused:?}")
            };
            assert!(!advice.is_empty(), "{common}");
        }
        let Err(e) = check(PasswordPolicy::default(), "password", &ann()) else { panic!() };
        assert_eq!(
            e.to_string(),
            "password is too easy to guess: This is a top-10 common password. Add another word or two. Uncommon words are better."
        );
    }

    /// OWASP ASVS 5.0 V6.2.11: the account's own words (the documented list)
    /// are refused, however they are dressed up.
    #[test]
    fn passwords_built_from_the_account_are_refused_asvs_v6_2_11() {
        for own in ["ann.smith@example.com", "ANN.SMITH@EXAMPLE.COM", "ann.smith", "annsmith", "ann smith", "gatehouse"]
        {
            assert_eq!(check(PasswordPolicy::default(), own, &ann()), Err(PasswordError::FromAccountDetails), "{own}");
        }
        // The same text for another account is judged on its own.
        let other = PasswordContext::default().with_email(&email("bob@example.org"));
        assert!(check(PasswordPolicy::default(), "ann.smith@example.com", &other).is_ok());
    }

    /// OWASP ASVS 5.0 V6.2.5: no composition rules: a passphrase of ordinary
    /// lower-case words passes, a short "complex" password does not.
    #[test]
    fn ordinary_passphrases_pass_without_composition_rules_asvs_v6_2_5() {
        for good in [
            "correct horse battery",
            "correct horse battery staple",
            "a brand new password for ann",
            "mauve tractor on the hill",
        ] {
            assert_eq!(check(PasswordPolicy::default(), good, &ann()), Ok(()), "{good}");
        }
        assert!(check(PasswordPolicy::default(), "P@ssw0rd!", &ann()).is_err());
    }

    #[test]
    fn the_minimum_score_is_configurable_from_1_to_4() {
        assert_eq!(PasswordPolicy::new(0), Err(ScoreOutOfRange));
        assert_eq!(PasswordPolicy::new(5), Err(ScoreOutOfRange));
        let lenient = PasswordPolicy::new(1).unwrap();
        // Even the most lenient policy refuses the top passwords and the account's own words.
        assert!(check(lenient, "password", &ann()).is_err());
        assert!(check(lenient, "ann.smith@example.com", &ann()).is_err());
        assert!(check(lenient, "mauvetractor", &ann()).is_ok());
        let strict = PasswordPolicy::new(4).unwrap();
        assert!(check(strict, "mauvetractor", &ann()).is_err());
        assert_eq!(PasswordPolicy::default().min_score(), PasswordPolicy::DEFAULT_MIN_SCORE);
    }

    #[test]
    fn context_lists_the_documented_words() {
        let words = ann().words().to_vec();
        for expected in
            ["gatehouse", "ann.smith@example.com", "ann.smith", "smith", "example.com", "example", "ann smith"]
        {
            assert!(words.iter().any(|w| w == expected), "{expected} missing from {words:?}");
        }
        assert!(words.iter().any(|w| w == "ann"), "three characters are enough");
        assert!(!words.iter().any(|w| w == "com"), "only the domain's first label is a word of its own");
        let short = PasswordContext::default().with_email(&email("jo.x@ab.io"));
        assert!(!short.words().iter().any(|w| w == "jo" || w == "x" || w == "ab"), "{:?}", short.words());
    }

    #[test]
    fn context_of_an_account_has_every_login_email() {
        let c = PasswordContext::default().with_email(&email("x.y@first.org")).with_email(&email("zed@second.org"));
        assert!(c.words().iter().any(|w| w == "first"));
        assert!(c.words().iter().any(|w| w == "zed@second.org"));
    }

    /// Only the NFKC form is judged: a full-width "ｐａｓｓｗｏｒｄ" is "password".
    #[test]
    fn the_normalised_form_is_judged() {
        let wide = "\u{ff50}\u{ff41}\u{ff53}\u{ff53}\u{ff57}\u{ff4f}\u{ff52}\u{ff44}";
        assert!(matches!(check(PasswordPolicy::default(), wide, &ann()), Err(PasswordError::TooGuessable { .. })));
    }
}
