//! Container and Kubernetes pod identity from a cgroup path.
//!
//! Runtimes name cgroups after the container id (64 hex digits) in two families of layout:
//! - cgroupfs driver: `/docker/<id>`, `/kubepods/burstable/pod<uid>/<id>`, `/ecs/<task>/<id>`;
//! - systemd driver: `/system.slice/docker-<id>.scope`,
//!   `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope`,
//!   `crio-<id>.scope`, `libpod-<id>.scope` (podman, also under `user@<uid>.service` when rootless).
//!
//! The deepest component that names a container wins (nested scopes such as `<id>.scope/init.scope` are
//! skipped over). `*-conmon-<id>.scope` is the runtime's monitor process, not the container.

/// The container of the event model: `runtime` is `unknown` when the cgroupfs layout under kubepods
/// does not say which CRI runtime made it.
pub use ward_event::Container;

/// systemd scope prefixes and the runtime each names.
const SCOPE_PREFIXES: [(&str, &str); 6] = [
    ("docker-", "docker"),
    ("cri-containerd-", "containerd"),
    ("containerd-", "containerd"),
    ("crio-", "cri-o"),
    ("libpod-", "podman"),
    ("nerdctl-", "containerd"),
];

fn is_container_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The container id a single path component names, with the runtime when the component says it.
fn component_id(component: &str) -> Option<(&str, Option<&'static str>)> {
    if is_container_id(component) {
        return Some((component, None));
    }
    let scope = component.strip_suffix(".scope")?;
    if scope.contains("-conmon-") {
        return None;
    }
    SCOPE_PREFIXES
        .iter()
        .find_map(|(prefix, runtime)| scope.strip_prefix(prefix).map(|id| (id, Some(*runtime))))
        .filter(|(id, _)| is_container_id(id))
}

/// Pod uid from `pod<uid>` (cgroupfs) or `kubepods-<qos>-pod<uid_with_underscores>.slice` (systemd).
fn pod_uid(component: &str) -> Option<String> {
    let uid = match component.strip_suffix(".slice") {
        Some(slice) => slice.rsplit_once("-pod")?.1,
        None => component.strip_prefix("pod")?,
    };
    let uid = uid.replace('_', "-");
    let valid = uid.len() == 36 && uid.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit());
    valid.then_some(uid)
}

/// Parses a cgroup path (`/a/b/c`, as in `/proc/<pid>/cgroup` or the kernel event).
pub fn from_cgroup_path(path: &str) -> Option<Container> {
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let (index, (id, runtime)) = components
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, c)| component_id(c).map(|found| (i, found)))?;
    let ancestors = &components[..index];
    let pod_uid = ancestors.iter().rev().find_map(|c| pod_uid(c));
    let runtime = runtime.unwrap_or_else(|| match ancestors.first().copied() {
        Some("docker") => "docker",
        Some("ecs") => "ecs",
        Some("libpod_parent") | Some("machine.slice") => "podman",
        _ => "unknown",
    });
    Some(Container {
        id: id.to_string(),
        runtime: runtime.into(),
        pod_uid,
    })
}

/// Tries every hierarchy of a `/proc/<pid>/cgroup` file (cgroup v1 controllers on hybrid hosts carry the
/// container's path when the v2 hierarchy does not).
pub fn from_proc_cgroup(contents: &str) -> Option<Container> {
    contents
        .lines()
        .filter_map(|line| line.splitn(3, ':').nth(2))
        .find_map(from_cgroup_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1d1a7c3b2e9d8f0a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f";
    const POD: &str = "0b1f5e2c-7d4a-4c3e-9a8b-1234567890ab";

    fn parsed(path: &str) -> Option<(String, &'static str, Option<String>)> {
        from_cgroup_path(path).map(|c| {
            let std::borrow::Cow::Borrowed(runtime) = c.runtime else {
                panic!("runtime names come from the static table");
            };
            (c.id, runtime, c.pod_uid)
        })
    }

    #[test]
    fn docker_cgroupfs_and_systemd() {
        assert_eq!(
            parsed(&format!("/docker/{ID}")),
            Some((ID.into(), "docker", None))
        );
        assert_eq!(
            parsed(&format!("/system.slice/docker-{ID}.scope")),
            Some((ID.into(), "docker", None))
        );
        // Docker-in-docker or a systemd container: the id sits above init.scope.
        assert_eq!(
            parsed(&format!("/system.slice/docker-{ID}.scope/init.scope")),
            Some((ID.into(), "docker", None))
        );
    }

    #[test]
    fn kubernetes_containerd_systemd() {
        let uid = POD.replace('-', "_");
        let path = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice/cri-containerd-{ID}.scope"
        );
        assert_eq!(
            parsed(&path),
            Some((ID.into(), "containerd", Some(POD.into())))
        );
        let guaranteed =
            format!("/kubepods.slice/kubepods-pod{uid}.slice/cri-containerd-{ID}.scope");
        assert_eq!(
            parsed(&guaranteed),
            Some((ID.into(), "containerd", Some(POD.into())))
        );
    }

    #[test]
    fn kubernetes_cgroupfs() {
        let path = format!("/kubepods/besteffort/pod{POD}/{ID}");
        assert_eq!(
            parsed(&path),
            Some((ID.into(), "unknown", Some(POD.into())))
        );
    }

    #[test]
    fn crio_and_its_conmon() {
        let uid = POD.replace('-', "_");
        let path = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid}.slice/crio-{ID}.scope"
        );
        assert_eq!(parsed(&path), Some((ID.into(), "cri-o", Some(POD.into()))));
        let conmon = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid}.slice/crio-conmon-{ID}.scope"
        );
        assert_eq!(parsed(&conmon), None);
    }

    #[test]
    fn podman_root_and_rootless() {
        assert_eq!(
            parsed(&format!("/machine.slice/libpod-{ID}.scope")),
            Some((ID.into(), "podman", None))
        );
        let rootless = format!(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
        );
        assert_eq!(parsed(&rootless), Some((ID.into(), "podman", None)));
        assert_eq!(
            parsed(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
            None
        );
    }

    #[test]
    fn ecs_task() {
        let path = format!("/ecs/5a0d5b7a-task/{ID}");
        assert_eq!(parsed(&path), Some((ID.into(), "ecs", None)));
    }

    #[test]
    fn hosts_and_lookalikes_are_not_containers() {
        for path in [
            "/",
            "",
            "/user.slice/user-0.slice/session-3.scope",
            "/system.slice/sshd.service",
            "/init.scope",
            // 63 and 65 hex digits, uppercase hex: not a runtime's id.
            &format!("/docker/{}", &ID[1..]),
            &format!("/docker/{ID}0"),
            &format!("/docker/{}", ID.to_uppercase()),
        ] {
            assert_eq!(from_cgroup_path(path), None, "{path}");
        }
    }

    #[test]
    fn proc_cgroup_file_of_a_hybrid_host() {
        let contents = format!("12:memory:/docker/{ID}\n11:cpu,cpuacct:/docker/{ID}\n0::/\n");
        assert_eq!(
            from_proc_cgroup(&contents).map(|c| c.id),
            Some(ID.to_string())
        );
        assert_eq!(from_proc_cgroup("0::/user.slice\n"), None);
    }
}
