//! Pure tests of validation, rendering and assessment.

mod assess_tests;
mod fixtures;
mod render_tests;
mod validate_tests;
