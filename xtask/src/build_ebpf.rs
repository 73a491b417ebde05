//! `cargo xtask build-ebpf`: compile `agent-ebpf/bpf/ward.bpf.c` into the committed `agent-ebpf/ward.bpf.o`.
//!
//! The object is committed so that building the agent needs no clang. `--check` rebuilds into a temporary
//! file and fails when the committed bytes differ, which CI uses to catch a C change without a rebuild.
//! Paths are given relative to `agent-ebpf/` and `-ffile-prefix-map` rewrites the rest, so the bytes do not
//! depend on where the checkout lives. DWARF is stripped (BTF and BTF.ext, which CO-RE needs, stay).

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
    let tmp = std::env::temp_dir().join(format!("ward-ebpf-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let unstripped = tmp.join("ward.unstripped.o");
    let built = tmp.join(OBJECT);
    let prefix_map = format!("-ffile-prefix-map={}=.", dir.display());
    run_tool(
        Command::new(CLANG)
            .current_dir(&dir)
            .args([
                "-target",
                "bpf",
                "-g",
                "-O2",
                "-D__TARGET_ARCH_x86",
                "-Wall",
                "-Werror",
            ])
            .arg(&prefix_map)
            .args(["-I", "bpf", "-c", "bpf/ward.bpf.c", "-o"])
            .arg(&unstripped),
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
    std::fs::remove_dir_all(&tmp).ok();
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
