//! Integration tests of fednet on real control planes live in `tests/tests/`.
