//! Two-pass parsing support.
//!
//! The contract orders errors: a malformed body (400) is reported before an
//! invalid value (422), wherever the two sit in the document. serde stops at
//! the first error in document order, so parsing runs twice: first with value
//! checks switched off (only JSON shape: types, missing and unknown fields),
//! then with them on. The switch is thread-local because serde gives a
//! `Deserialize` impl no other context; deserialisation is synchronous, so a
//! pass never spans threads.

use std::cell::Cell;

thread_local! {
    static VALUES_UNCHECKED: Cell<bool> = const { Cell::new(false) };
}

/// Whether `Deserialize` impls should check values (ids, codes, ranges).
pub(crate) fn values_checked() -> bool {
    !VALUES_UNCHECKED.with(Cell::get)
}

/// Runs `f` with value checks off, restoring the previous setting afterwards
/// (also when `f` unwinds).
pub(crate) fn with_values_unchecked<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            VALUES_UNCHECKED.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(VALUES_UNCHECKED.with(|c| c.replace(true)));
    f()
}
