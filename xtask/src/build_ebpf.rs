//! `cargo xtask build-ebpf`: compile `agent-ebpf/bpf/ward.bpf.c` into the committed `agent-ebpf/ward.bpf.o`.
//!
//! The object is committed so that building the agent needs no clang. `--check` rebuilds into a temporary
//! file and fails when the committed bytes differ, which CI uses to catch a C change without a rebuild.
//! DWARF is stripped (BTF and BTF.ext, which CO-RE needs, stay).
//!
//! Reproducible bytes: clang-19 orders some BTF types by how its allocations happened to fall, and those
//! shift with the length of the working directory and of the command line. So the sources are copied to a
//! fixed directory and compiled there with a fixed command line and a clean environment; the same checkout
//! built from any path then gives the same object.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

#[derive(clap::Args)]
pub struct Args {
    /// Fail if the committed object differs from a fresh build, instead of replacing it.
    #[arg(long)]
    check: bool,
    /// Also regenerate bpf/vmlinux.h from this machine's /sys/kernel/btf/vmlinux.
    #[arg(long)]
    vmlinux: bool,
}

const CLANG: &str = "clang-19";
const STRIP: &str = "llvm-strip-19";
const OBJECT: &str = "ward.bpf.o";
/// Fixed on purpose: the build directory's path influences clang's output (see the module comment).
const BUILD_DIR: &str = "/tmp/ward-ebpf-build";

pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = crate::workspace_root().join("agent-ebpf");
    if args.vmlinux {
        let out = run_tool(
            Command::new("bpftool").args([
                "btf",
                "dump",
                "file",
                "/sys/kernel/btf/vmlinux",
                "format",
                "c",
            ]),
            "bpftool (apt install bpftool)",
        )?;
        std::fs::write(dir.join("bpf/vmlinux.h"), out)?;
    }
    let tmp = Path::new(BUILD_DIR);
    let _ = std::fs::remove_dir_all(tmp);
    let src = tmp.join("src");
    std::fs::create_dir_all(src.join("bpf"))?;
    for entry in std::fs::read_dir(dir.join("bpf"))? {
        let entry = entry?;
        std::fs::copy(entry.path(), src.join("bpf").join(entry.file_name()))?;
    }
    let unstripped = tmp.join("ward.unstripped.o");
    let built = tmp.join(OBJECT);
    let flags = [
        "-target",
        "bpf",
        "-g",
        "-O2",
        "-D__TARGET_ARCH_x86",
        "-Wall",
        "-Werror",
    ];
    run_tool(
        Command::new(CLANG)
            .current_dir(&src)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .args(flags)
            .args([
                "-I",
                "bpf",
                "-c",
                "bpf/ward.bpf.c",
                "-o",
                "../ward.unstripped.o",
            ]),
        "clang-19 (apt install clang-19 libbpf-dev)",
    )?;
    run_tool(
        Command::new(STRIP)
            .arg("-g")
            .arg(&unstripped)
            .arg("-o")
            .arg(&built),
        "llvm-strip-19 (apt install llvm-19)",
    )?;
    let committed = dir.join(OBJECT);
    let result = if args.check {
        compare(&built, &committed)
    } else {
        std::fs::copy(&built, &committed)
            .map(|_| ())
            .context("replacing the committed object")
    };
    std::fs::remove_dir_all(tmp).ok();
    result?;
    println!(
        "agent-ebpf/{OBJECT}: {}",
        if args.check { "up to date" } else { "rebuilt" }
    );
    Ok(())
}

fn compare(built: &Path, committed: &PathBuf) -> anyhow::Result<()> {
    let fresh = std::fs::read(built)?;
    let old =
        std::fs::read(committed).with_context(|| format!("reading {}", committed.display()))?;
    if fresh != old {
        bail!(
            "agent-ebpf/{OBJECT} is stale ({} bytes committed, {} bytes built from bpf/*.c): run `cargo xtask build-ebpf` and commit the object",
            old.len(),
            fresh.len()
        );
    }
    Ok(())
}

fn run_tool(cmd: &mut Command, what: &str) -> anyhow::Result<Vec<u8>> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!("{what} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(out.stdout)
}
