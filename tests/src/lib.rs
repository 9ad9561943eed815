//! Integration tests of fednet on real control planes live in `tests/tests/`; this library holds
//! the harness they share.

pub mod operator_env;
pub mod skupper_env;
pub mod submariner_env;
pub mod tcp_proxy;
