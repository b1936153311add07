//! `lamina create`: a container from an image, with `run`'s flags, not started (`lamina start`).

use std::process::ExitCode;

use super::container::create;

pub fn run(cli: &crate::Cli, args: &super::run::Args) -> anyhow::Result<ExitCode> {
    match create::create(cli, args) {
        Ok(c) => {
            // The record holds the image's snapshots from now until `rm`.
            if let Some(l) = c.lease {
                l.persist();
            }
            crate::outln!("{}", c.id);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(crate::output::report_error_as(&e, super::run::OWN_ERROR)),
    }
}
