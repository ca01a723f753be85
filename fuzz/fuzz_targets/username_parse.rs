//! `Username::parse` on arbitrary strings.
//!
//! Property: no panic; an accepted name has a display form and a canonical
//! form of 3 to 32 characters, and both parse again to the same canonical
//! form (the canonical form is a fixed point). Identity and uniqueness are
//! decided on the canonical form, so it must itself be a valid name that
//! maps to itself, or two spellings of one name could end up as two users.
#![no_main]

use authd::domain::Username;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &str| {
    let Ok(name) = Username::parse(raw) else {
        return;
    };
    let bounds = Username::MIN_CHARS..=Username::MAX_CHARS;
    for form in [name.as_str(), name.canonical()] {
        assert!(
            bounds.contains(&form.chars().count()),
            "{form:?} from {raw:?}"
        );
        let again =
            Username::parse(form).unwrap_or_else(|e| panic!("{form:?} from {raw:?}: {e:?}"));
        assert_eq!(again.canonical(), name.canonical(), "{form:?} from {raw:?}");
    }
});
