package cluster_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sluice.dev/sluice/test/cluster"
)

// TestEverythingListensOnLoopbackOnly reads the listening TCP sockets of every
// process of the control plane from /proc and fails on any that another
// machine could reach.
func TestEverythingListensOnLoopbackOnly(t *testing.T) {
	root := os.Getpid()
	if env.Attached() {
		pid, ok, err := cluster.ReadState(env.Dir)
		if err != nil || !ok {
			t.Fatalf("state of the attached cluster: ok=%v err=%v", ok, err)
		}
		root = pid
	}
	api, err := url.Parse(env.AdminConfig().Host)
	if err != nil {
		t.Fatal(err)
	}
	// A secure Prometheus is this process's child even on an attached
	// cluster, whose processes are another's.
	secure, err := env.StartSecurePrometheus(t.Context(), "user", "password")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := secure.Stop(); err != nil {
			t.Error(err)
		}
	})
	secureURL, err := url.Parse(secure.URL)
	if err != nil {
		t.Fatal(err)
	}
	pids := cluster.Descendants(root)
	if root != os.Getpid() {
		pids = append(pids, cluster.Descendants(os.Getpid())...)
	}
	// Each process's listening ports, by the name of its binary.
	ports := map[string][]uint16{}
	var etcdURL string
	for _, pid := range pids {
		exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
		if err != nil {
			if cluster.Alive(pid) {
				t.Errorf("process %d: %v", pid, err)
			}
			continue
		}
		name := filepath.Base(exe)
		listening, err := listeners(pid)
		if err != nil {
			if cluster.Alive(pid) {
				t.Errorf("%s (pid %d): %v", name, pid, err)
			}
			continue
		}
		for _, l := range listening {
			if a := l.Addr().Unmap(); a != netip.AddrFrom4([4]byte{127, 0, 0, 1}) && a != netip.IPv6Loopback() {
				t.Errorf("%s (pid %d) listens on %s; want 127.0.0.1 or ::1 only", name, pid, l)
			}
			ports[name] = append(ports[name], l.Port())
		}
		if name == "kube-apiserver" {
			etcdURL = flagValue(t, pid, "--etcd-servers")
		}
	}
	t.Logf("listening ports by process: %v", ports)

	// The sockets the test bed cannot work without must be among those found,
	// or the reading of /proc is broken and the test proves nothing.
	etcd, err := url.Parse(etcdURL)
	if err != nil || etcd.Port() == "" {
		t.Fatalf("kube-apiserver's --etcd-servers %q: %v", etcdURL, err)
	}
	for name, port := range map[string]string{"kube-apiserver": api.Port(), "etcd": etcd.Port(), "prometheus": secureURL.Port()} {
		if !containsPort(ports[name], port) {
			t.Errorf("found no listening socket of %s on port %s; found %v", name, port, ports[name])
		}
	}
}

func containsPort(ports []uint16, port string) bool {
	for _, p := range ports {
		if strconv.Itoa(int(p)) == port {
			return true
		}
	}
	return false
}

// flagValue returns the value of a --name=value argument of process pid.
func flagValue(t *testing.T, pid int, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		t.Fatal(err)
	}
	for _, arg := range strings.Split(string(raw), "\x00") {
		if v, ok := strings.CutPrefix(arg, name+"="); ok {
			return v
		}
	}
	return ""
}

// listeners returns the local addresses of the listening TCP sockets that
// process pid holds: the kernel's socket tables of its network namespace,
// narrowed to the socket inodes among its open files.
func listeners(pid int) ([]netip.AddrPort, error) {
	proc := filepath.Join("/proc", strconv.Itoa(pid))
	fds, err := os.ReadDir(filepath.Join(proc, "fd"))
	if err != nil {
		return nil, fmt.Errorf("open files: %w", err)
	}
	sockets := map[string]bool{}
	for _, fd := range fds {
		// Files closed since the listing have no link any more.
		link, err := os.Readlink(filepath.Join(proc, "fd", fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			sockets[strings.TrimSuffix(inode, "]")] = true
		}
	}
	var out []netip.AddrPort
	for _, table := range []string{"tcp", "tcp6"} {
		raw, err := os.ReadFile(filepath.Join(proc, "net", table))
		if errors.Is(err, fs.ErrNotExist) {
			continue // a kernel without IPv6
		}
		if err != nil {
			return nil, err
		}
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
		for _, line := range strings.Split(string(raw), "\n")[1:] {
			f := strings.Fields(line)
			const listen = "0A"
			if len(f) < 10 || f[3] != listen || !sockets[f[9]] {
				continue
			}
			addr, err := parseProcAddr(f[1])
			if err != nil {
				return nil, fmt.Errorf("/proc/%d/net/%s: %w", pid, table, err)
			}
			out = append(out, addr)
		}
	}
	return out, nil
}

// parseProcAddr parses an address of /proc/net/tcp{,6}: the IP as 32-bit
// words in hex, each in the machine's byte order, a colon and the port in hex.
func parseProcAddr(s string) (netip.AddrPort, error) {
	ipHex, portHex, ok := strings.Cut(s, ":")
	if !ok || (len(ipHex) != 8 && len(ipHex) != 32) {
		return netip.AddrPort{}, fmt.Errorf("address %q", s)
	}
	ip := make([]byte, len(ipHex)/2)
	for i := 0; i < len(ipHex); i += 8 {
		word, err := strconv.ParseUint(ipHex[i:i+8], 16, 32)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("address %q: %w", s, err)
		}
		binary.NativeEndian.PutUint32(ip[i/2:], uint32(word))
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: %w", s, err)
	}
	addr, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(addr, uint16(port)), nil
}
