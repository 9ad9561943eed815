//! Pure tests of rendering, assessment and validation.

mod assess_tests;
mod fixtures;
mod render_tests;
