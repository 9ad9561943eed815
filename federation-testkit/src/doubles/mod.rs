//! Test doubles of upstream controllers that cannot run against the kit's clusters.
//!
//! Only API servers run here: no kubelet, no pods. Where a test needs an upstream controller's
//! observable behaviour (a Skupper `Site` turning Ready, a `Link` turning Operational), a double
//! writes exactly that, following rules documented against the upstream code they imitate.

pub mod skupper;
