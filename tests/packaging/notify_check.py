#!/usr/bin/env python3
"""Checks what the unit's Type=notify and ExecReload promise, on the installed
/usr/bin/moni run as user moni with the packaged /etc/moni/moni.toml (on a
free loopback port, data in $MONI_RUN_DIR): READY=1 arrives on
$NOTIFY_SOCKET only once the HTTP listener accepts connections; SIGHUP gives
RELOADING=1 then READY=1; SIGTERM gives STOPPING=1 and exit status 0."""
import os
import pwd
import signal
import socket
import subprocess
import sys
import time

run_dir = os.environ["MONI_RUN_DIR"]
moni = pwd.getpwnam("moni")


def fail(msg, proc=None, log=None):
    if proc and proc.poll() is None:
        proc.kill()
        proc.wait()
    if log:
        with open(log, errors="replace") as f:
            sys.stderr.write(f.read()[-4000:])
    sys.exit(f"FAIL: {msg}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


sock_path = os.path.join(run_dir, "notify.sock")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(sock_path)
os.chmod(sock_path, 0o666)
data_dir = os.path.join(run_dir, "data")
os.makedirs(data_dir, exist_ok=True)
os.chown(data_dir, moni.pw_uid, moni.pw_gid)
port = free_port()
log = os.path.join(run_dir, "moni.log")

with open(log, "w") as out:
    proc = subprocess.Popen(
        ["/usr/bin/moni", "run", "--config", "/etc/moni/moni.toml",
         "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir],
        env=dict(os.environ, NOTIFY_SOCKET=sock_path), cwd="/", stdout=out,
        stderr=subprocess.STDOUT, user=moni.pw_uid, group=moni.pw_gid, extra_groups=[])


def expect(state, timeout):
    """Waits for a notification carrying `state`; returns when it arrives."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(f"moni exited ({proc.returncode}) while waiting for {state}", None, log)
        notify.settimeout(0.2)
        try:
            msg = notify.recv(4096).decode(errors="replace")
        except socket.timeout:
            continue
        if state in msg.split("\n"):
            return
    fail(f"no {state} within {timeout}s", proc, log)


t = time.monotonic()
expect("READY=1", 60)
if not accepts(port):
    fail(f"READY=1 sent but 127.0.0.1:{port} does not accept connections", proc, log)
print(f"ok: READY=1 after {time.monotonic() - t:.1f}s, 127.0.0.1:{port} accepts")

proc.send_signal(signal.SIGHUP)
expect("RELOADING=1", 30)
expect("READY=1", 60)
print("ok: SIGHUP -> RELOADING=1, READY=1")

proc.send_signal(signal.SIGTERM)
expect("STOPPING=1", 30)
try:
    rc = proc.wait(timeout=90)
except subprocess.TimeoutExpired:
    fail("moni did not exit within 90s of SIGTERM", proc, log)
if rc != 0:
    fail(f"moni exited with status {rc} after SIGTERM", None, log)
print("ok: SIGTERM -> STOPPING=1, exit 0")
