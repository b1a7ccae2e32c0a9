package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// EnvDir names the folder of a running `localcluster up` that tests attach to
// instead of starting their own control plane.
const EnvDir = "SLUICE_CLUSTER_DIR"

// testsLock is the file in a running cluster's folder that test packages
// attached to it take turns on.
const testsLock = "tests.lock"

// RunTests gives a test package one control plane: it attaches to the cluster
// in $SLUICE_CLUSTER_DIR if set, or starts a new one; stores it in *c; runs
// the tests; and stops what it started, also on Ctrl-C. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(cluster.RunTests(m, &env)) }
//
// Packages attached to the same cluster run one after another: each holds a
// lock in its folder for its whole run, because tests assume they have the
// cluster to themselves (Prometheus' targets, cluster-wide objects, timing).
func RunTests(m *testing.M, c **Cluster) int {
	var err error
	if dir := os.Getenv(EnvDir); dir != "" {
		*c, err = Attach(dir)
		if err == nil {
			var lock *os.File
			if lock, err = lockCluster(dir, os.Stderr); err == nil {
				// On a panic, which skips this, the kernel releases the lock
				// as the process ends.
				defer lock.Close()
			}
		}
	} else {
		fmt.Fprintln(os.Stderr, "starting the local control plane")
		*c, err = Start(context.Background(), Options{Progress: os.Stderr})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "local control plane:", err)
		return 1
	}
	stop := func() {
		if err := (*c).Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop local control plane:", err)
		}
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-signals
		stop()
		fmt.Fprintf(os.Stderr, "local control plane stopped on %s\n", sig)
		os.Exit(130)
	}()
	defer stop()
	return m.Run()
}

// lockCluster takes the exclusive lock on the cluster in dir that attached
// test packages take turns on, waiting (and saying so on progress) while
// another holds it. The lock lasts until the returned file is closed or the
// process ends.
func lockCluster(dir string, progress io.Writer) (*os.File, error) {
	path := filepath.Join(dir, testsLock)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock the cluster in %s: %w", dir, err)
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		fmt.Fprintf(progress, "waiting for another test package that uses the cluster in %s\n", dir)
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

var invalidLabelRunes = regexp.MustCompile(`[^a-z0-9]+`)

// Eventually polls cond every 100ms until it returns nil, failing the test
// after timeout with cond's last error.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		err := cond(ctx)
		if err != nil && ctx.Err() == nil {
			last = err
		}
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, last)
	}
}

// Clientset returns a clientset for the cluster admin.
func (c *Cluster) Clientset(t testing.TB) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// NewNamespace creates a namespace named after the test, deleted when the
// test ends.
func (c *Cluster) NewNamespace(t testing.TB) string {
	t.Helper()
	cs := c.Clientset(t)
	// A DNS label: lower-case letters, digits and inner dashes.
	prefix := strings.Trim(invalidLabelRunes.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(prefix) > 40 {
		prefix = strings.TrimRight(prefix[:40], "-")
	}
	ns, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}
