//! Engine tests without root: builds through `build_with` and the fake executor in a temp store.

mod cache;
mod copy;
mod errors;
mod meta;
mod onbuild;
mod onbuild_from;
mod platforms;
mod run;
mod schedule;
mod support;
