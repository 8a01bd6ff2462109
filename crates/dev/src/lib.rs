//! The developer side of uc-access, never shipped: the local run on embedded defaults (`local`), the
//! whole loop shown non-interactively (`demo`), and the local token issuer whose tokens the local run
//! accepts (`local_issuer`). It ties the product crate (`uc_access`) to the stand-in crate
//! (`uc_access_standin`); the product itself depends on neither this crate nor the stand-in.

pub mod demo;
pub mod local;
pub mod local_issuer;
