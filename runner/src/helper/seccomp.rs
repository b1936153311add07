//! lamina's default seccomp profile.
//!
//! Docker's default profile is an allow-list of ~370 syscalls that returns EPERM for the rest. We keep
//! its intent with a shorter, audited deny-list of what that allow-list leaves out (or only grants with
//! CAP_SYS_ADMIN and friends, which we drop anyway): kernel modules, kexec, clock setting, mount and the
//! new mount API, namespace creation and joining, keyrings, BPF, perf, ptrace-like cross-process
//! memory access, swap, reboot, quotas, userfaultfd, io_uring. `clone3` answers ENOSYS so libc falls
//! back to `clone`, whose namespace flags seccomp can inspect (a pointer argument it cannot).
//! Unknown names on this kernel/libseccomp are skipped by the runtime.

use serde_json::{Value, json};

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

const DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "_sysctl",
    "sysfs",
    "syslog",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
];

/// `CLONE_NEW*` flags: clone(2) with any of them is refused (Docker allows them only with SYS_ADMIN).
const CLONE_NS_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

/// The native ABI and its compat ABIs (what Docker lists): every extra arch costs filter size.
#[cfg(target_arch = "x86_64")]
const ARCHES: &[&str] = &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
#[cfg(target_arch = "aarch64")]
const ARCHES: &[&str] = &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCHES: &[&str] = &[];

/// The `linux.seccomp` object of the OCI runtime spec.
pub(crate) fn profile() -> Value {
    let mut syscalls = vec![
        json!({"names": DENIED, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM}),
        json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}),
    ];
    for flag in CLONE_NS_FLAGS {
        syscalls.push(json!({
            "names": ["clone"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": EPERM,
            "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
        }));
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ARCHES,
        "syscalls": syscalls,
    })
}
