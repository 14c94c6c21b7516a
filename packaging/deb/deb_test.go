package deb

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// packages builds the Debian packages once per test run (scripts/
// package.sh, as `make package` does) and returns their paths by
// "<package>_<arch>".
var packages = sync.OnceValues(func() (map[string]string, error) {
	root, err := testpeer.RepoRoot()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("./scripts/package.sh")
	cmd.Dir = root
	// A version of its own, so the test never packs what an earlier
	// make package left in dist/.
	version := fmt.Sprintf("0.0.%d+test", time.Now().Unix())
	cmd.Env = append(os.Environ(), "PKG_VERSION="+version)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("scripts/package.sh: %v\n%s", err, out)
	}
	out := map[string]string{}
	for _, name := range []string{"shelterwatch", "shelterwatch-grafana-plugin"} {
		for _, arch := range []string{"amd64", "arm64"} {
			p := filepath.Join(root, "dist", fmt.Sprintf("%s_%s_%s.deb", name, version, arch))
			if _, err := os.Stat(p); err != nil {
				return nil, err
			}
			out[name+"_"+arch] = p
		}
	}
	return out, nil
})

func debs(t *testing.T) map[string]string {
	t.Helper()
	testpeer.Require(t, "dpkg-deb", "dpkg")
	m, err := packages()
	if err != nil {
		t.Fatalf("build the packages: %v", err)
	}
	built.Store(true)
	return m
}

// built: a test asked for the packages (so TestMain deletes them).
var built atomic.Bool

// TestMain deletes the packages the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if built.Load() {
		if debs, err := packages(); err == nil {
			for _, p := range debs {
				_ = os.Remove(p)
			}
		}
	}
	os.Exit(code)
}

// TestLintian: Debian's package checker finds no error in any of the
// four packages. Its warnings are logged: a Go binary without a manual
// page, and the config directory readable by the gateway's group only,
// on purpose.
func TestLintian(t *testing.T) {
	lintian := testpeer.Require(t, "lintian", "lintian")
	for arch, deb := range debs(t) {
		out, err := exec.Command(lintian, "--tag-display-limit", "0", "--fail-on", "error", deb).CombinedOutput()
		t.Logf("lintian %s:\n%s", arch, out)
		if err != nil {
			t.Errorf("lintian finds errors in the %s package: %v", arch, err)
		}
		if bytes.Contains(out, []byte("\nE: ")) || bytes.HasPrefix(out, []byte("E: ")) {
			t.Errorf("lintian error in the %s package", arch)
		}
	}
}

// TestSystemdUnit: systemd-analyze verifies the unit (syntax, and the
// commands it runs exist: the packaged binary stands in for
// /usr/bin/shelter-gateway) and rates its sandbox at most 3.0 ("OK").
func TestSystemdUnit(t *testing.T) {
	sa := testpeer.Require(t, "systemd-analyze", "systemd")
	root, err := testpeer.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile(filepath.Join(root, "packaging/debian/shelterwatch.service"))
	if err != nil {
		t.Fatal(err)
	}
	bin := extract(t, debs(t)["shelterwatch_amd64"], "usr/bin/shelter-gateway")
	dir := t.TempDir()
	path := filepath.Join(dir, "shelterwatch.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/bin/shelter-gateway"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sa, "verify", path).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command(sa, "security", "--offline=yes", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security: exposure %.1f %s", score, m[2])
	if score > 3.0 {
		t.Errorf("exposure %.1f %s, want at most 3.0 (OK):\n%s", score, m[2], out)
	}
}

// TestGrafanaPluginPackage: the plugin package holds the plugin's folder
// as Grafana loads it, with the backend of its own architecture only.
func TestGrafanaPluginPackage(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		dir := filepath.Dir(extract(t, debs(t)["shelterwatch-grafana-plugin_"+arch], "x"))
		base := filepath.Join(dir, "var/lib/grafana/plugins/shelterwatch-gateway-datasource")
		for _, f := range []string{"plugin.json", "module.js", "img/logo.svg", "gpx_shelterwatch_linux_" + arch} {
			if _, err := os.Stat(filepath.Join(base, f)); err != nil {
				t.Errorf("%s package: %v", arch, err)
			}
		}
		other := map[string]string{"amd64": "arm64", "arm64": "amd64"}[arch]
		if _, err := os.Stat(filepath.Join(base, "gpx_shelterwatch_linux_"+other)); err == nil {
			t.Errorf("the %s package holds the %s backend too", arch, other)
		}
	}
}

// extract unpacks one file of a package into a temporary folder.
func extract(t *testing.T, deb, name string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", deb, dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	return filepath.Join(dir, name)
}

// aptSource returns the Debian mirror and suite this machine installs
// from (its own apt sources), for debootstrap: the repository names no
// host.
func aptSource(t *testing.T) (mirror, suite string) {
	t.Helper()
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// deb822: a stanza of URIs and Suites; the first Debian one.
		var uri, suites string
		for _, line := range strings.Split(string(b)+"\n", "\n") {
			k, v, _ := strings.Cut(line, ":")
			switch strings.TrimSpace(k) {
			case "URIs":
				uri = strings.Fields(v)[0]
			case "Suites":
				suites = strings.TrimSpace(v)
			case "":
				if uri != "" && suites != "" && !strings.Contains(uri, "security") {
					return uri, strings.Fields(suites)[0]
				}
				uri, suites = "", ""
			}
		}
	}
	if f, err := os.Open("/etc/apt/sources.list"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) >= 3 && fs[0] == "deb" && !strings.Contains(fs[1], "security") {
				return fs[1], fs[2]
			}
		}
	}
	t.Fatal("no Debian mirror in this machine's apt sources")
	return "", ""
}

// chroot runs a command in the Debian root.
func chroot(t *testing.T, root string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "chroot", append([]string{root}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "LANG=C.UTF-8"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chroot %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestInstallRemovePurge installs the amd64 package into a fresh minimal
// Debian root (debootstrap --variant=minbase, from this machine's own
// mirror) as an installer would on a gateway: the system user, the
// state directory (0700) and the config (root:shelterwatch 0640) are
// made; the installed config validates, and the installed gateway runs
// there as its user, from the installed files, until it is ready.
// Removing the package keeps the data and the config; purging deletes
// both and the user.
func TestInstallRemovePurge(t *testing.T) {
	if os.Geteuid() != 0 {
		msg := "installing into a Debian root needs root (make test runs as root on the CI machine)"
		if testpeer.CI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	debootstrap := testpeer.Require(t, "debootstrap", "debootstrap")
	deb := debs(t)["shelterwatch_amd64"]
	mirror, suite := aptSource(t)
	root := filepath.Join(t.TempDir(), "debian")
	start := time.Now()
	if out, err := exec.Command(debootstrap, "--variant=minbase", suite, root, mirror).CombinedOutput(); err != nil {
		t.Fatalf("debootstrap %s from %s: %v\n%s", suite, mirror, err, out)
	}
	t.Logf("debootstrap --variant=minbase %s: %v", suite, time.Since(start).Round(time.Second))
	if err := syscall.Mount("proc", filepath.Join(root, "proc"), "proc", 0, ""); err != nil {
		t.Fatalf("mount /proc in the root: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(filepath.Join(root, "proc"), syscall.MNT_DETACH) })
	pkg, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "tmp/shelterwatch.deb"), pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	// apt resolves the one dependency (adduser) from the mirror.
	chroot(t, root, "apt-get", "install", "-y", "-q", "--no-install-recommends", "/tmp/shelterwatch.deb")

	if out := chroot(t, root, "getent", "passwd", "shelterwatch"); !strings.Contains(out, "/var/lib/shelterwatch:/usr/sbin/nologin") {
		t.Errorf("the system user: %q", out)
	}
	for path, want := range map[string]string{
		"/var/lib/shelterwatch":               "700 shelterwatch shelterwatch",
		"/etc/shelterwatch":                   "750 root shelterwatch",
		"/etc/shelterwatch/shelterwatch.yaml": "640 root shelterwatch",
	} {
		if got := strings.TrimSpace(chroot(t, root, "stat", "-c", "%a %U %G", path)); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
	if out := chroot(t, root, "dpkg-query", "-W", "-f", "${Conffiles}", "shelterwatch"); !strings.Contains(out, "/etc/shelterwatch/shelterwatch.yaml") {
		t.Errorf("the config is not a conffile: %q", out)
	}
	if out := chroot(t, root, "setpriv", "--reuid=shelterwatch", "--regid=shelterwatch", "--init-groups",
		"/usr/bin/shelter-gateway", "validate", "--config", "/etc/shelterwatch/shelterwatch.yaml"); !strings.Contains(out, "ok") {
		t.Errorf("validate: %q", out)
	}

	// Run the installed gateway as its user. The installed config listens
	// on the LAN; a test listens on loopback, port 0 only.
	cfg, err := os.ReadFile(filepath.Join(root, "etc/shelterwatch/shelterwatch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	loopback := strings.NewReplacer(`"0.0.0.0:1883"`, `"127.0.0.1:0"`, `"0.0.0.0:8080"`, `"127.0.0.1:0"`).Replace(string(cfg))
	if loopback == string(cfg) {
		t.Fatal("the installed config's listeners moved: update this test")
	}
	loopback += "log: {format: json}\n"
	if err := os.WriteFile(filepath.Join(root, "etc/shelterwatch/test.yaml"), []byte(loopback), 0o640); err != nil {
		t.Fatal(err)
	}
	chroot(t, root, "chgrp", "shelterwatch", "/etc/shelterwatch/test.yaml")
	// While it runs, root backs it up through its control socket (the
	// socket is the service user's, 0600: root reaches it, nobody else).
	runInstalled(t, root, func() {
		out := chroot(t, root, "/usr/bin/shelter-gateway", "backup", "--config", "/etc/shelterwatch/test.yaml", "--to", "/root/facility.swbk")
		if !strings.Contains(out, "backup of my-facility") {
			t.Errorf("backup of the running gateway: %q", out)
		}
	})
	// Restored by root over the data (kept aside), the files are the
	// service user's again: the gateway starts on them.
	out := chroot(t, root, "/usr/bin/shelter-gateway", "restore", "--config", "/etc/shelterwatch/test.yaml", "--from", "/root/facility.swbk", "--replace")
	if !strings.Contains(out, "ok: start the gateway") {
		t.Errorf("restore: %q", out)
	}
	for _, p := range []string{"/var/lib/shelterwatch/store", "/var/lib/shelterwatch/alarms", "/var/lib/shelterwatch/alarms/audit.jsonl"} {
		if got := strings.TrimSpace(chroot(t, root, "stat", "-c", "%U %G", p)); got != "shelterwatch shelterwatch" {
			t.Errorf("restored %s belongs to %s, want shelterwatch", p, got)
		}
	}
	runInstalled(t, root, nil)

	// Removed: the data and the config stay.
	chroot(t, root, "dpkg", "--remove", "shelterwatch")
	for _, p := range []string{"var/lib/shelterwatch/store", "var/lib/shelterwatch/alarms/audit.jsonl", "etc/shelterwatch/shelterwatch.yaml"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("after dpkg --remove, /%s: %v (want kept)", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "usr/bin/shelter-gateway")); err == nil {
		t.Error("after dpkg --remove, the binary is still there")
	}
	// Purged: gone, and the user with them.
	chroot(t, root, "dpkg", "--purge", "shelterwatch")
	for _, p := range []string{"var/lib/shelterwatch", "etc/shelterwatch"} {
		if _, err := os.Stat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("after dpkg --purge, /%s: %v (want gone)", p, err)
		}
	}
	if out, err := exec.Command("chroot", root, "getent", "passwd", "shelterwatch").CombinedOutput(); err == nil {
		t.Errorf("after dpkg --purge, the user is still there: %s", out)
	}
}

// runInstalled starts the installed gateway in the root as the
// shelterwatch user with the loopback copy of the installed config, waits
// until it is ready (it has written its store and audit log), calls
// whileReady (when not nil) and stops it with SIGTERM.
func runInstalled(t *testing.T, root string, whileReady func()) {
	t.Helper()
	cmd := exec.Command("chroot", root, "setpriv", "--reuid=shelterwatch", "--regid=shelterwatch", "--init-groups",
		"/usr/bin/shelter-gateway", "run", "--config", "/etc/shelterwatch/test.yaml")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	var log testpeer.SyncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	defer func() {
		if !exited {
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(log.String(), `"msg":"gateway: ready"`) {
		select {
		case err := <-done:
			exited = true
			t.Fatalf("the installed gateway exited before it was ready: %v\n%s", err, log.String())
		case <-deadline:
			t.Fatalf("the installed gateway was not ready within 30s:\n%s", log.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if whileReady != nil {
		whileReady()
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		exited = true
		if err != nil {
			t.Fatalf("the installed gateway's exit after SIGTERM: %v\n%s", err, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the installed gateway did not stop within 30s of SIGTERM")
	}
}
