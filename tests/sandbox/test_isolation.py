"""What a container can see and do: processes, hostname, network, filesystem, secrets, privileges."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner.sandbox import ContainerSpec, Mount, NetworkNamespace, Rootfs, run
from runner.sandbox.capabilities import DEFAULT_MASK

pytestmark = pytest.mark.kernel


def test_pid_namespace_hides_host_processes(sh):
    ran = sh(
        "echo $$; ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '; echo;"
        " tr '\\0' ' ' < /proc/1/cmdline"
    )
    lines = ran.stdout.splitlines()
    assert lines[0] == "1"
    pids = [int(p) for p in lines[1].split()]
    assert max(pids) < 20, pids  # only the container's own few processes
    assert os.getpid() not in pids or os.getpid() < 20
    assert lines[2].startswith("sh")


def test_own_hostname_and_hosts(sh):
    ran = sh("hostname; grep -c runner /etc/hosts", hostname="job-7")
    assert ran.stdout.splitlines()[0] == "job-7"
    extra = sh("getent hosts cache", hosts={"cache": "127.0.0.1"})
    assert extra.stdout.startswith("127.0.0.1")


def test_loopback_only_network(sh):
    ran = sh("ls /sys/class/net; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '")
    assert ran.result.ok, ran.stderr
    assert set(ran.stdout.split()) == {"lo"}
    host_ifaces = set(os.listdir("/sys/class/net"))
    assert host_ifaces - {"lo"}, (
        "the host should have a non-loopback interface for this test to mean anything"
    )


def test_host_network_mode_sees_host_interfaces(paths, rootfs):
    with NetworkNamespace.create("host") as host_net:
        out: list[bytes] = []
        spec = ContainerSpec(["cat", "/proc/net/dev"], cwd="/")
        result = run(
            spec, rootfs=rootfs, network=host_net, on_output=lambda s, line: out.append(line), paths=paths
        )
    assert result.ok
    names = {line.decode().split(":")[0].strip() for line in out[2:]}
    assert names == {n for n in os.listdir("/sys/class/net")}


def test_shared_network_namespace_between_containers(paths, rootfs, net):
    from runner.sandbox import spawn

    server = spawn(
        ContainerSpec(
            [
                "python3",
                "-c",
                "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
                "s.bind(('127.0.0.1',7777));s.listen();print('up',flush=True);c,_=s.accept();"
                "c.sendall(b'pong');c.close()",
            ],
            cwd="/",
        ),
        rootfs=rootfs,
        network=net,
        paths=paths,
    )
    out: list[bytes] = []
    client = ContainerSpec(
        [
            "python3",
            "-c",
            "import socket,time\n"
            "for i in range(100):\n"
            "  try:\n"
            "    s=socket.create_connection(('127.0.0.1',7777));break\n"
            "  except OSError: time.sleep(0.05)\n"
            "print(s.recv(10).decode())",
        ],
        cwd="/",
        timeout=20,
    )
    result = run(client, rootfs=rootfs, network=net, on_output=lambda s, line: out.append(line), paths=paths)
    assert server.wait().ok
    assert result.ok and out == [b"pong"]
    # and the host's loopback does not see it
    with pytest.raises(OSError):
        import socket

        socket.create_connection(("127.0.0.1", 7777), timeout=0.5)


def test_writes_land_in_the_throwaway_layer(sh, rootfs, paths):
    marker = "/usr/lib/runner-test-marker"
    ran = sh(f"echo data > {marker} && echo x > /etc/runner-test && rm -f /usr/bin/env; cat {marker}")
    assert ran.result.ok, ran.stderr
    assert not os.path.exists(marker) and not os.path.exists("/etc/runner-test")
    assert os.path.exists("/usr/bin/env")
    assert (rootfs.uppers()["usr"] / "lib/runner-test-marker").read_text() == "data\n"
    # the next container over the same rootfs (the next step of a job) sees it...
    assert sh(f"cat {marker}; test ! -e /usr/bin/env && echo gone").stdout.split() == ["data", "gone"]
    # ...and a new rootfs does not
    with Rootfs.create(paths) as fresh:
        result = run(ContainerSpec(["test", "-e", marker], cwd="/"), rootfs=fresh, paths=paths)
    assert result.exit_code == 1


def test_host_secrets_and_private_dirs_are_hidden(sh, tmp_path):
    ran = sh(
        "for p in /etc/shadow /etc/gshadow /etc/ssh/ssh_host_rsa_key /work /old_root; do"
        " test -e $p && echo visible $p; done;"
        " ls -A /root /home /tmp /var/tmp /run | grep -v ':$' | grep . ; "
        f" test -e {tmp_path} && echo visible-tmp; true"
    )
    assert ran.result.ok
    assert ran.stdout.strip() == ""
    assert sh("test -r /etc/passwd && test -x /bin/sh && echo ok").stdout == "ok"


def test_workspace_env_and_cwd(sh, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "input.txt").write_text("hello\n")
    ran = sh(
        "pwd; cat input.txt; echo out > output.txt; echo $GREETING; echo $PATH",
        workspace=ws,
        cwd="/workspace",
        env={"GREETING": "hi there"},
    )
    assert ran.stdout.splitlines()[:3] == ["/workspace", "hello", "hi there"]
    assert "/usr/bin" in ran.stdout.splitlines()[3]
    assert (ws / "output.txt").read_text() == "out\n"


def test_extra_mounts_read_only(sh, tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    (src / "f").write_text("x")
    ran = sh("cat /data/f; touch /data/g", mounts=[Mount(src, "/data", readonly=True)])
    assert ran.stdout == "x"
    assert ran.result.exit_code != 0 and "Read-only" in ran.stderr
    assert not (src / "g").exists()


def test_uid_and_gid(sh):
    assert sh("id -u; id -g", uid=1000, gid=1000).stdout.split() == ["1000", "1000"]


def test_capabilities_reduced_and_no_new_privs(sh):
    ran = sh("grep -E '^(CapEff|CapBnd|CapPrm|NoNewPrivs)' /proc/self/status")
    fields = dict(line.split(":\t") for line in ran.stdout.splitlines())
    assert int(fields["CapEff"], 16) == DEFAULT_MASK
    assert int(fields["CapBnd"], 16) == DEFAULT_MASK
    assert fields["NoNewPrivs"] == "1"
    assert DEFAULT_MASK & (1 << 21) == 0  # no CAP_SYS_ADMIN
    denied = sh(
        "mount -t tmpfs none /mnt 2>/dev/null && echo mounted;"
        " mknod /tmp/disk b 254 0 2>/dev/null && echo mknod;"
        " date -s '2001-01-01' >/dev/null 2>&1 && echo clock;"
        " echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo procsys;"
        " echo x > /sys/kernel/uevent_helper 2>/dev/null && echo sys; true"
    )
    assert denied.stdout.strip() == ""


def test_proc_is_masked(sh):
    ran = sh(
        "wc -c < /proc/keys; ls /proc/acpi | wc -l; touch /proc/sysrq-trigger 2>&1 || true;"
        " grep -E ' /proc/(sys|irq|bus|fs) ' /proc/self/mountinfo | grep -c ' ro,'"
    )
    lines = ran.stdout.split()
    assert lines[0] == "0"  # /proc/keys is /dev/null
    assert lines[1] == "0"  # /proc/acpi is an empty tmpfs
    assert int(lines[-1]) >= 3


def test_minimal_dev(sh):
    ran = sh(
        "ls /dev | sort | tr '\\n' ' '; echo; head -c 4 /dev/urandom | wc -c; echo x > /dev/null && echo ok"
    )
    listed = set(ran.stdout.splitlines()[0].split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm"} <= listed
    assert not any(name.startswith(("sd", "vd", "nvme", "mem", "kmsg")) for name in listed)
    assert ran.stdout.splitlines()[1:] == ["4", "ok"]


def test_pty(sh):
    ran = sh("test -t 1 && tty", pty=True)
    assert ran.result.ok
    assert ran.stdout.startswith("/dev/pts/")


def test_ipc_namespace_is_private(sh):
    assert sh("ls /dev/mqueue | wc -l; cat /proc/sysvipc/shm | wc -l").stdout.split() == ["0", "1"]


def test_root_is_a_fresh_mount_and_old_root_is_gone(sh):
    ran = sh("cat /proc/self/mountinfo")
    targets = [line.split()[4] for line in ran.stdout.splitlines()]
    assert targets[0] == "/"
    assert not any(t.startswith(("/old", "/work", "/tmp/")) for t in targets), targets


def test_workspace_must_exist(paths, rootfs):
    from runner.sandbox import SandboxError

    with pytest.raises(SandboxError, match="does not exist"):
        run(ContainerSpec(["true"], workspace=Path("/nonexistent/dir")), rootfs=rootfs, paths=paths)


def test_deep_images_mount_past_the_page_sized_option_limit(paths):
    """200 layers with long paths: `lowerdir=` alone would be ~10 KB, more than mount(2) takes."""
    layers = []
    for i in range(200):
        layer = paths.home / "deep" / f"layer-{i:04d}-with-a-deliberately-long-directory-name"
        layer.mkdir(parents=True)
        (layer / f"file{i}").write_text(str(i))
        (layer / "shadowed").write_text(str(i))
        layers.append(layer)
    layers.reverse()  # top first
    with Rootfs.create(paths, layers=layers, base="host") as rootfs:
        assert len(rootfs.overlays[0].options()) > 4096
        out: list[bytes] = []
        script = "ls / | grep -c '^file'; cat /file0 /file199; echo; cat /shadowed"
        result = run(
            ContainerSpec(["sh", "-c", script], cwd="/"),
            rootfs=rootfs,
            paths=paths,
            on_output=lambda s, line: out.append(line),
        )
    assert result.ok, out
    assert out == [b"200", b"0199", b"199"]  # every layer visible, the top one wins
