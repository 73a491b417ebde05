//! One test per event family of the kernel sensors: each triggers the behaviour from a child process on
//! this host (loopback only) and checks the event and its attribution to that process.

use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use ward_tests::{Agent, can_load_ebpf, marker};

const WAIT: Duration = Duration::from_secs(10);
const PYTHON: &str = "/usr/bin/python3";

fn python(code: &str) -> Child {
    Command::new(PYTHON)
        .args(["-c", code])
        .stdin(Stdio::null())
        .spawn()
        .expect("python3")
}

use ward_tests::run_python;

fn by(pid: u32, kind: &'static str) -> impl Fn(&Value) -> bool {
    move |e: &Value| e["type"] == kind && e["process"]["pid"] == pid
}

#[test]
fn sensitive_file_reads_absolute_and_relative() {
    if !can_load_ebpf("sensitive_file_reads_absolute_and_relative") {
        return;
    }
    let agent = Agent::start(&["--types", "file_open"]);
    let mut cat = Command::new("cat")
        .arg("/etc/shadow")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let cat_pid = cat.id();
    cat.wait().unwrap();
    let e = agent
        .wait_for(WAIT, by(cat_pid, "file_open"))
        .expect("read of /etc/shadow");
    assert_eq!(e["file"]["path"], "/etc/shadow");
    assert_eq!(e["syscall"], "openat");
    assert!(e["result"].as_i64().unwrap() >= 0);
    assert!(
        e["file"].get("flags").is_none(),
        "a read-only open has no write flags: {e}"
    );

    // Relative to the working directory: resolved by the kernel to the absolute path.
    let mut rel = Command::new("cat")
        .arg("shadow")
        .current_dir("/etc")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let rel_pid = rel.id();
    rel.wait().unwrap();
    let e = agent
        .wait_for(WAIT, by(rel_pid, "file_open"))
        .expect("relative read of shadow");
    assert_eq!(e["file"]["path"], "/etc/shadow");
    assert_eq!(e["file"]["given"], "shadow");

    // A failed attempt is visible with its error: a read as nobody is refused.
    let mut denied = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "cat",
            "/etc/shadow",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let denied_pid = denied.id();
    denied.wait().unwrap();
    let e = agent
        .wait_for(WAIT, by(denied_pid, "file_open"))
        .expect("denied read of /etc/shadow");
    assert_eq!(e["error"], "EACCES");
    assert_eq!(e["process"]["uid"], 65534);
    agent.stop();
}

#[test]
fn create_then_setuid_bit_rename_and_unlink() {
    if !can_load_ebpf("create_then_setuid_bit_rename_and_unlink") {
        return;
    }
    let dir = std::env::temp_dir().join(marker("files"));
    std::fs::create_dir_all(&dir).unwrap();
    let agent = Agent::start(&["--types", "file_open,file_chmod,file_rename,file_unlink"]);
    let mut sh = Command::new("sh")
        .args([
            "-c",
            "touch tool && chmod u+s tool && mv tool tool2 && rm tool2",
        ])
        .current_dir(&dir)
        .spawn()
        .unwrap();
    assert!(sh.wait().unwrap().success());
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let created = agent
        .wait_for(WAIT, |e| {
            e["type"] == "file_open" && e["file"]["path"] == path("tool")
        })
        .expect("create of tool");
    assert!(
        created["file"]["flags"]
            .as_array()
            .unwrap()
            .contains(&"O_CREAT".into()),
        "{created}"
    );
    // Other processes on the host rename and unlink files too: match on this test's paths.
    let at = |kind: &'static str, name: &'static str| {
        let path = path(name);
        move |e: &Value| e["type"] == kind && e["file"]["path"] == path.as_str()
    };
    let chmod = agent
        .wait_for(WAIT, at("file_chmod", "tool"))
        .expect("chmod u+s");
    assert_eq!(chmod["file"]["path"], path("tool"));
    let mode = u32::from_str_radix(chmod["file"]["mode"].as_str().unwrap(), 8).unwrap();
    assert_eq!(mode & 0o4000, 0o4000, "setuid bit visible: {chmod}");
    let rename = agent
        .wait_for(WAIT, at("file_rename", "tool"))
        .expect("rename");
    assert_eq!(rename["file"]["path"], path("tool"));
    assert_eq!(rename["file"]["target"], path("tool2"));
    let unlink = agent
        .wait_for(WAIT, at("file_unlink", "tool2"))
        .expect("unlink");
    assert_eq!(unlink["file"]["path"], path("tool2"));
    assert_eq!(unlink["process"]["name"], "rm");
    agent.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tcp_connect_and_accept_on_loopback() {
    if !can_load_ebpf("tcp_connect_and_accept_on_loopback") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let agent = Agent::start(&["--types", "net_connect,net_accept"]);
    let client = python(&format!(
        "import socket,time; s=socket.create_connection(('127.0.0.1',{port})); print(s.getsockname()[1], flush=True); time.sleep(0.2)"
    ));
    let client_pid = client.id();
    let (_conn, peer) = listener.accept().unwrap();
    let connect = agent
        .wait_for(WAIT, by(client_pid, "net_connect"))
        .expect("connect event");
    assert_eq!(connect["socket"]["remote"]["ip"], "127.0.0.1");
    assert_eq!(connect["socket"]["remote"]["port"], port);
    assert_eq!(
        connect["socket"]["local"]["port"],
        peer.port(),
        "the kernel-chosen source port"
    );
    assert_eq!(connect["socket"]["protocol"], "tcp");
    assert_eq!(connect["result"], 0);
    let accept = agent
        .wait_for(WAIT, by(std::process::id(), "net_accept"))
        .expect("accept event");
    assert_eq!(accept["socket"]["local"]["port"], port);
    assert_eq!(accept["socket"]["remote"]["port"], peer.port());

    // A refused connection is reported with its error.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let refused = run_python(&format!(
        "import socket\ntry:\n socket.create_connection(('127.0.0.1',{closed_port}))\nexcept OSError: pass"
    ));
    let e = agent
        .wait_for(WAIT, by(refused, "net_connect"))
        .expect("refused connect");
    assert_eq!(e["error"], "ECONNREFUSED");
    assert_eq!(e["socket"]["remote"]["port"], closed_port);
    drop(client);
    agent.stop();
}

#[test]
fn unix_socket_connect_names_the_path() {
    if !can_load_ebpf("unix_socket_connect_names_the_path") {
        return;
    }
    let path = std::env::temp_dir().join(format!("{}.sock", marker("unix")));
    let listener = UnixListener::bind(&path).unwrap();
    let agent = Agent::start(&["--types", "net_connect"]);
    let pid = run_python(&format!(
        "import socket; s=socket.socket(socket.AF_UNIX); s.connect({:?})",
        path.to_str().unwrap()
    ));
    let e = agent
        .wait_for(WAIT, by(pid, "net_connect"))
        .expect("unix connect");
    assert_eq!(e["socket"]["family"], "unix");
    assert_eq!(e["socket"]["path"], path.to_str().unwrap());
    agent.stop();
    drop(listener);
    std::fs::remove_file(&path).unwrap();
}

/// An agent watching DNS, and the pid of a process that looked `name` up from the test's server
/// on 127.0.0.77 (answered by then).
fn dns_lookup_watched(name: &str) -> (Agent, u32) {
    let agent = Agent::start(&["--types", "dns_query,dns_response"]);
    (agent, ward_tests::dns_lookup(name))
}

#[test]
fn dns_query_and_answer_attributed_to_the_process() {
    if !can_load_ebpf("dns_query_and_answer_attributed_to_the_process") {
        return;
    }
    let (agent, pid) = dns_lookup_watched("pool.ward-test.example");
    let query = agent
        .wait_for(WAIT, by(pid, "dns_query"))
        .expect("dns query event");
    assert_eq!(query["dns"]["id"], 0x4242);
    assert_eq!(
        query["dns"]["questions"][0]["name"],
        "pool.ward-test.example"
    );
    assert_eq!(query["dns"]["questions"][0]["type"], "A");
    assert_eq!(query["dns"]["server"]["ip"], "127.0.0.77");
    assert_eq!(query["dns"]["server"]["port"], 53);
    let response = agent
        .wait_for(WAIT, by(pid, "dns_response"))
        .expect("dns response attributed by socket");
    assert_eq!(response["dns"]["answers"][0]["data"], "192.0.2.7");
    assert_eq!(response["dns"]["answers"][0]["ttl"], 60);
    assert_eq!(response["dns"]["rcode"], "NoError");
    agent.stop();
}

/// A DNS server on this host (loopback) must not make the agent report its side of the exchange:
/// the query it receives and the reply it sends are not lookups of its own. Each query is one
/// `dns_query` event, by the process that sent it, and its answer one `dns_response`.
#[test]
fn dns_query_is_reported_once_by_its_sender() {
    if !can_load_ebpf("dns_query_is_reported_once_by_its_sender") {
        return;
    }
    let name = format!("{}.ward-test.example", marker("once"));
    let (agent, pid) = dns_lookup_watched(&name);
    let asks = |e: &Value| e["dns"]["questions"][0]["name"] == name.as_str();
    let mut seen = agent
        .events_until(WAIT, |e| asks(e) && by(pid, "dns_response")(e))
        .expect("the answer, attributed to the sender");
    // Anything about the exchange printed after the answer (the server's side comes earlier in
    // time, but give the output a moment).
    seen.extend(agent.events_for(Duration::from_millis(500)));
    let exchange: Vec<&Value> = seen.iter().filter(|e| asks(e)).collect();
    let queries: Vec<&&Value> = exchange
        .iter()
        .filter(|e| e["type"] == "dns_query")
        .collect();
    let responses: Vec<&&Value> = exchange
        .iter()
        .filter(|e| e["type"] == "dns_response")
        .collect();
    assert_eq!(queries.len(), 1, "one dns_query per query: {exchange:#?}");
    assert_eq!(
        responses.len(),
        1,
        "one dns_response per answer: {exchange:#?}"
    );
    for e in exchange {
        assert_eq!(e["process"]["pid"], pid, "attributed to the sender: {e}");
        assert_eq!(e["dns"]["server"]["ip"], "127.0.0.77", "{e}");
        assert_eq!(e["dns"]["server"]["port"], 53, "{e}");
    }
    agent.stop();
}

#[test]
fn shell_with_socket_stdio_is_visible() {
    if !can_load_ebpf("shell_with_socket_stdio_is_visible") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let agent = Agent::start(&["--types", "process_exec,net_stdio_socket"]);
    let mark = marker("revshell");
    // The classic: bash puts a TCP socket on stdin, stdout and stderr, then runs an interactive shell.
    ward_tests::reverse_shell(&listener, &mark);
    let dup = agent
        .wait_for(WAIT, |e| {
            e["type"] == "net_stdio_socket" && e["socket"]["remote"]["port"] == port
        })
        .expect("dup2 of a socket onto stdio");
    assert!(dup["socket"]["stdio_fd"].as_u64().unwrap() <= 2);
    let exec = agent
        .wait_for(WAIT, |e| {
            e["type"] == "process_exec" && e["exec"]["stdio_socket"]["remote"]["port"] == port
        })
        .expect("exec of a shell whose stdio is a socket");
    assert_eq!(exec["exec"]["stdio_sockets"], serde_json::json!([0, 1, 2]));
    assert_eq!(exec["exec"]["stdio_socket"]["remote"]["ip"], "127.0.0.1");
    assert_eq!(exec["exec"]["stdio_socket"]["remote"]["port"], port);
    assert_eq!(exec["process"]["name"], "bash");
    agent.stop();
}

#[test]
fn ptrace_attach_and_process_vm_writev() {
    if !can_load_ebpf("ptrace_attach_and_process_vm_writev") {
        return;
    }
    let mut target = Command::new("sleep").arg("30").spawn().unwrap();
    let target_pid = target.id();
    let agent = Agent::start(&["--types", "ptrace,process_vm_access"]);
    let tracer = run_python(&format!(
        "import ctypes,os,time\nlibc=ctypes.CDLL(None,use_errno=True)\n\
         assert libc.ptrace(16,{target_pid},0,0)==0\nos.waitpid({target_pid},0)\nlibc.ptrace(17,{target_pid},0,0)"
    ));
    let e = agent
        .wait_for(WAIT, by(tracer, "ptrace"))
        .expect("ptrace attach");
    assert_eq!(e["target"]["request"], "PTRACE_ATTACH");
    assert_eq!(e["target"]["pid"], target_pid);
    assert_eq!(e["target"]["process"]["name"], "sleep");
    assert_eq!(e["result"], 0);

    // Write into our own memory through process_vm_writev (a real injection would name another process).
    let writer = run_python(
        "import ctypes,os\nlibc=ctypes.CDLL(None,use_errno=True)\n\
         class iov(ctypes.Structure): _fields_=[('b',ctypes.c_void_p),('n',ctypes.c_size_t)]\n\
         src=ctypes.create_string_buffer(b'ward'); dst=ctypes.create_string_buffer(4)\n\
         l=iov(ctypes.cast(src,ctypes.c_void_p),4); r=iov(ctypes.cast(dst,ctypes.c_void_p),4)\n\
         assert libc.process_vm_writev(os.getpid(),ctypes.byref(l),1,ctypes.byref(r),1,0)==4",
    );
    let e = agent
        .wait_for(WAIT, by(writer, "process_vm_access"))
        .expect("process_vm_writev");
    assert_eq!(e["target"]["pid"], writer);
    assert_eq!(e["target"]["write"], true);
    assert_eq!(e["syscall"], "process_vm_writev");
    target.kill().unwrap();
    target.wait().unwrap();
    agent.stop();
}

#[test]
fn memfd_exec_is_fileless() {
    if !can_load_ebpf("memfd_exec_is_fileless") {
        return;
    }
    let agent = Agent::start(&["--types", "memfd_create,process_exec"]);
    let mark = marker("memfd");
    let pid = run_python(&format!(
        "import os\nfd=os.memfd_create('ward-payload',0)\nos.write(fd,open('/bin/true','rb').read())\n\
         os.execv('/proc/self/fd/%d'%fd,['payload','{mark}'])"
    ));
    let memfd = agent
        .wait_for(WAIT, by(pid, "memfd_create"))
        .expect("memfd_create");
    assert_eq!(memfd["memfd"]["name"], "ward-payload");
    let exec = agent
        .wait_for(WAIT, |e| ward_tests::is_exec_with_arg(e, &mark))
        .expect("exec of the memfd");
    assert_eq!(exec["process"]["pid"], pid);
    assert_eq!(exec["exec"]["fileless"], true);
    agent.stop();
}

#[test]
fn userfaultfd_mount_and_setuid() {
    if !can_load_ebpf("userfaultfd_mount_and_setuid") {
        return;
    }
    let agent = Agent::start(&["--types", "userfaultfd,mount,priv_setid"]);
    let uffd = run_python("import ctypes\nlibc=ctypes.CDLL(None)\nlibc.syscall(323, 0o2000000)");
    let e = agent
        .wait_for(WAIT, by(uffd, "userfaultfd"))
        .expect("userfaultfd");
    assert_eq!(e["syscall"], "userfaultfd");

    let target = std::env::temp_dir().join(marker("mnt"));
    std::fs::create_dir_all(&target).unwrap();
    let mut mount = Command::new("unshare")
        .args([
            "--mount",
            "mount",
            "-t",
            "tmpfs",
            "ward-test",
            target.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    assert!(mount.wait().unwrap().success());
    let e = agent
        .wait_for(WAIT, |e| {
            e["type"] == "mount" && e["mount"]["target"] == target.to_str().unwrap()
        })
        .expect("mount event");
    assert_eq!(e["mount"]["fstype"], "tmpfs");
    assert_eq!(e["mount"]["source"], "ward-test");
    assert_eq!(e["result"], 0);
    std::fs::remove_dir(&target).unwrap();

    let pid = run_python("import os\nos.setgid(65534)\nos.setuid(65534)");
    let e = agent
        .wait_for(WAIT, |e| {
            e["type"] == "priv_setid" && e["process"]["pid"] == pid && e["syscall"] == "setuid"
        })
        .expect("setuid event");
    assert_eq!(e["privilege"]["before"]["uid"], 0);
    assert_eq!(e["privilege"]["after"]["uid"], 65534);
    assert_eq!(e["privilege"]["after"]["euid"], 65534);
    assert_eq!(e["privilege"]["requested"], serde_json::json!([65534]));
    agent.stop();
}

#[test]
fn file_filters_are_configurable() {
    if !can_load_ebpf("file_filters_are_configurable") {
        return;
    }
    let mark = marker("filters");
    let dir = std::env::temp_dir().join(&mark);
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("secret.key");
    std::fs::write(&secret, b"k").unwrap();
    let ignored = dir.join("ignored");
    std::fs::create_dir_all(&ignored).unwrap();
    let agent = Agent::start(&[
        "--types",
        "file_open",
        "--sensitive",
        &format!("{}/*.key", dir.display()),
        "--ignore-prefix",
        &format!("{}/", ignored.display()),
    ]);
    let script = format!(
        "cat {secret} >/dev/null; echo x > {ignored}/skip; echo y > {dir}/kept",
        secret = secret.display(),
        ignored = ignored.display(),
        dir = dir.display()
    );
    assert!(
        Command::new("sh")
            .args(["-c", &script])
            .status()
            .unwrap()
            .success()
    );
    let read = agent
        .wait_for(WAIT, |e| {
            e["type"] == "file_open" && e["file"]["path"] == secret.to_str().unwrap()
        })
        .expect("read of a file made sensitive by --sensitive");
    assert!(read["file"].get("flags").is_none());
    // Events arrive in order: the ignored write would come before the kept one.
    let next = agent
        .wait_for(WAIT, |e| {
            e["type"] == "file_open"
                && e["file"]["path"]
                    .as_str()
                    .unwrap()
                    .starts_with(dir.to_str().unwrap())
        })
        .expect("the write outside the ignored prefix");
    assert_eq!(
        next["file"]["path"],
        dir.join("kept").to_str().unwrap(),
        "ignored prefix leaked: {next}"
    );
    agent.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ipv6_bind_listen_connect() {
    if !can_load_ebpf("ipv6_bind_listen_connect") {
        return;
    }
    let agent = Agent::start(&["--types", "net_bind,net_listen,net_connect"]);
    let pid = run_python(
        "import socket\nl=socket.socket(socket.AF_INET6); l.bind(('::1',0)); l.listen(7)\n\
         c=socket.socket(socket.AF_INET6); c.connect(l.getsockname()[:2]); print(l.getsockname()[1])",
    );
    let bind = agent.wait_for(WAIT, by(pid, "net_bind")).expect("bind");
    assert_eq!(bind["socket"]["family"], "inet6");
    assert_eq!(bind["socket"]["local"]["ip"], "::1");
    let listen = agent.wait_for(WAIT, by(pid, "net_listen")).expect("listen");
    assert_eq!(listen["socket"]["backlog"], 7);
    let port = listen["socket"]["local"]["port"].as_u64().unwrap();
    assert_ne!(port, 0, "the kernel's port, not the 0 asked for");
    let connect = agent
        .wait_for(WAIT, by(pid, "net_connect"))
        .expect("connect");
    assert_eq!(connect["socket"]["remote"]["ip"], "::1");
    assert_eq!(connect["socket"]["remote"]["port"], port);
    assert_eq!(connect["result"], 0);
    agent.stop();
}

#[test]
fn writable_memory_made_executable() {
    if !can_load_ebpf("writable_memory_made_executable") {
        return;
    }
    let agent = Agent::start(&["--types", "memory_exec"]);
    // Anonymous read-write memory, then read+exec: what a loader of injected code does.
    let pid = run_python(
        "import ctypes,mmap\nlibc=ctypes.CDLL(None,use_errno=True)\nlibc.mmap.restype=ctypes.c_void_p\n\
         libc.mmap.argtypes=[ctypes.c_void_p,ctypes.c_size_t,ctypes.c_int,ctypes.c_int,ctypes.c_int,ctypes.c_long]\n\
         p=libc.mmap(None,4096,3,0x22,-1,0)\nassert libc.mprotect(ctypes.c_void_p(p),4096,5)==0",
    );
    let e = agent
        .wait_for(WAIT, by(pid, "memory_exec"))
        .expect("mprotect of RW memory to RX");
    assert_eq!(e["syscall"], "mprotect");
    assert_eq!(
        e["memory"]["protection"],
        serde_json::json!(["PROT_READ", "PROT_EXEC"])
    );
    assert_eq!(e["memory"]["length"], 4096);
    agent.stop();
}

#[test]
fn library_loads_once_per_file_and_process() {
    if !can_load_ebpf("library_loads_once_per_file_and_process") {
        return;
    }
    let agent = Agent::start(&["--types", "library_load"]);
    let dir = std::env::temp_dir().join(marker("libload"));
    std::fs::create_dir_all(&dir).unwrap();
    // A real shared library under a new name, loaded by the dynamic loader (dlopen).
    let lib = dir.join("libward-z.so.1");
    std::fs::copy("/lib/x86_64-linux-gnu/libz.so.1", &lib).unwrap();
    let loader = run_python(&format!(
        "import ctypes\nz=ctypes.CDLL('{}')\nassert z.zlibVersion",
        lib.display()
    ));
    let loaded = agent
        .wait_for(WAIT, |e| {
            by(loader, "library_load")(e) && e["file"]["path"] == lib.to_str().unwrap()
        })
        .expect("library_load of the dlopened copy");
    assert_eq!(loaded["syscall"], "mmap");
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&lib).unwrap());
    assert_eq!(loaded["file"]["inode"], ino);

    // A plain file mapped read-only (nothing), then read+exec twice (one event), by one process; then
    // once by another process (its own event).
    let blob = dir.join("blob.bin");
    std::fs::copy("/bin/true", &blob).unwrap();
    let map = |times: u32, prot: &str| {
        run_python(&format!(
            "import mmap\nf=open('{}','rb')\nms=[mmap.mmap(f.fileno(),0,flags=mmap.MAP_PRIVATE,prot={prot}) for _ in range({times})]",
            blob.display()
        ))
    };
    let read_only = map(1, "mmap.PROT_READ");
    let twice = map(2, "mmap.PROT_READ|mmap.PROT_EXEC");
    let other = map(1, "mmap.PROT_READ|mmap.PROT_EXEC");
    let blob_path = blob.to_str().unwrap().to_owned();
    let seen = agent
        .events_until(WAIT, |e| {
            by(other, "library_load")(e) && e["file"]["path"] == blob_path.as_str()
        })
        .expect("library_load by the second process");
    let count = |pid: u32| {
        seen.iter()
            .filter(|e| by(pid, "library_load")(e) && e["file"]["path"] == blob_path.as_str())
            .count()
    };
    assert_eq!(count(read_only), 0, "a read-only mapping is no load");
    assert_eq!(count(twice), 1, "two mappings by one process: one event");
    assert_eq!(count(other), 1);
    agent.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}
