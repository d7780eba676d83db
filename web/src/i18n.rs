//! The pages' language is the booking crate's `Lang` (see `booking::i18n`): one language type,
//! for pages and emails alike.

pub use booking::i18n::Lang;
