package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/sluice"
)

// TestDemo runs the demo as `make demo` does, non-interactively and with a
// 2s interval, while it keeps running at the end: the story must reach
// Succeeded with the loop answering only the new version, then Failed with
// the primary unchanged, twice (for errors, then for lost checkouts), then
// through an A/B test to Succeeded; every command of the README and of the
// demo's "look around" must work on what it leaves running; and `demo down`
// must leave no process behind.
func TestDemo(t *testing.T) {
	d := startDemo(t, "--interval=2s", "--router=istio")
	log := d.log
	for _, want := range []string{
		"New revision detected! Scaling up jx-progressive-canary.jx-staging",
		"Advance jx-progressive.jx-staging canary weight 20",
		"Advance jx-progressive.jx-staging canary weight 80",
		"Promotion completed! Scaling down jx-progressive-canary.jx-staging",
		`the loop answers "hello, progressive!" only`,
		"Rolling back jx-progressive.jx-staging request-success-rate: error rate ",
		"since the analysis started is above the allowed 1% with confidence",
		"Canary failed! Scaling down jx-progressive-canary.jx-staging",
		"Halt jx-progressive.jx-staging advancement checkout-conversion: ",
		"Rolling back jx-progressive.jx-staging failed checks threshold reached 5",
		"$ kubectl sluice pause jx-progressive -n jx-staging",
		"Paused jx-progressive.jx-staging at canary weight ",
		"Resumed jx-progressive.jx-staging at canary weight ",
		"Rolling back jx-progressive.jx-staging aborted by ",
		"The load-test webhook's last answer, from sluice-loadtester: Succeeded 200 OK: ",
		"routes by the VirtualServices' rules",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the demo never said %q", want)
		}
	}
	onlyNew := `the loop answers "hello, progressive!" only`
	brokenCheckout := strings.Index(log, "whose checkout is broken")
	abTest := strings.Index(log, "an A/B test (")
	order := []int{strings.Index(log, "Promotion completed!"), strings.Index(log, onlyNew),
		strings.Index(log, "Canary failed!"), brokenCheckout,
		brokenCheckout + strings.Index(log[max(brokenCheckout, 0):], "advancement checkout-conversion: "),
		strings.LastIndex(log, "Canary failed!"), strings.LastIndex(log, onlyNew), abTest}
	if !slices.IsSorted(order) || order[0] < 0 || order[1] == order[6] || order[2] == order[5] || order[4] < order[3] {
		t.Errorf("the story is out of order (promoted, only the new version, failed for errors, halted and failed for checkouts, "+
			"still only the new version, the A/B test at %v):\n%s", order, log)
	}
	checkABTest(t, log[max(abTest, 0):])
	checkPromoted(t, d)
	transcript, err := os.ReadFile(filepath.Join(d.dir, "transcript.txt"))
	if err != nil || !strings.Contains(string(transcript), "Canary failed!") {
		t.Errorf("transcript: %v; want the whole story in it", err)
	}
	if got := d.kubectl(t, "get", "virtualservice", "jx-progressive", "-n", "jx-staging", "-o", "name"); strings.TrimSpace(got) != "virtualservice.networking.istio.io/jx-progressive" {
		t.Errorf("the demo's VirtualService: %q", got)
	}

	// The demo built kubectl-sluice into its folder's bin, as its "look
	// around" says.
	t.Setenv("PATH", filepath.Join(d.dir, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, cmd := range lookAround(log) {
		runCommand(t, cmd, d.kubectlBin, d.kubeconfig)
	}
	runReadme(t, d.kubectlBin, d.kubeconfig)
	d.down(t)
}

// TestDemoGatewayAPI runs the demo's short story, its first release and its
// A/B test, with DEMO_ROUTER=gateway-api: the Deployment picks the router,
// an HTTPRoute and no VirtualService routes it, and the A/B test answers as
// on Istio. The whole story on Istio is TestDemo; the routers' equivalence
// beyond the A/B test is the shifter's tests'.
func TestDemoGatewayAPI(t *testing.T) {
	t.Setenv("DEMO_ROUTER", "gateway-api")
	d := startDemo(t, "--interval=2s", "--short")
	for _, want := range []string{
		"routes by the HTTPRoutes' rules",
		"routed by an HTTPRoute (sluice.dev/router: gateway-api) on the Gateway istio-system/jx-gateway",
		"Initialization done! jx-progressive.jx-staging",
		`the loop answers "hello, rolling update!" only`,
	} {
		if !strings.Contains(d.log, want) {
			t.Errorf("the demo never said %q", want)
		}
	}
	for _, unwanted := range []string{"hello, progressive!", "Canary failed!", "virtualservice"} {
		if strings.Contains(d.log, unwanted) {
			t.Errorf("the short story said %q; want only the first release and the A/B test", unwanted)
		}
	}
	checkABTest(t, d.log)
	checkPromoted(t, d)
	if got := d.kubectl(t, "get", "deployment", "jx-progressive", "-n", "jx-staging", "-o", `jsonpath={.metadata.annotations.sluice\.dev/router}`); got != "gateway-api" {
		t.Errorf("the Deployment's sluice.dev/router is %q; want gateway-api", got)
	}
	parents := d.kubectl(t, "get", "httproute", "jx-progressive", "-n", "jx-staging", "-o",
		`jsonpath={range .spec.parentRefs[*]}{.kind} {.namespace}/{.name}{end} {.spec.hostnames}`)
	if parents != `Gateway istio-system/jx-gateway ["staging.jx-progressive.example.com"]` {
		t.Errorf("the HTTPRoute's parents and hostnames: %s; want the Gateway istio-system/jx-gateway and the demo's host", parents)
	}
	if vs := d.kubectl(t, "get", "virtualservices", "-n", "jx-staging", "-o", "name"); vs != "" {
		t.Errorf("VirtualServices on the gateway-api router: %s", vs)
	}
	t.Setenv("PATH", filepath.Join(d.dir, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmds := lookAround(d.log)
	if !slices.ContainsFunc(cmds, func(c string) bool { return strings.Contains(c, " get httproute jx-progressive ") }) {
		t.Errorf("look around shows no HTTPRoute: %q", cmds)
	}
	for _, cmd := range cmds {
		runCommand(t, cmd, d.kubectlBin, d.kubeconfig)
	}
	d.down(t)
}

// abAnswer is a line of the A/B test's requests: with or without the
// header, and who answered.
var abAnswer = regexp.MustCompile(`(?m)^ +(with x-canary: insider|without) +→ (\S+) .*$`)

// checkABTest checks the A/B test's scene in log: a handful of requests with
// the header all answered by the canary, as many without all by the
// primary; then the promotion, and the loop answering only the new
// version.
func checkABTest(t *testing.T, log string) {
	t.Helper()
	who := map[string][]string{}
	for _, m := range abAnswer.FindAllStringSubmatch(log, -1) {
		who[m[1]] = append(who[m[1]], m[2])
		t.Logf("the A/B test's answers: %s", strings.TrimSpace(m[0]))
	}
	for label, want := range map[string]string{"with x-canary: insider": "jx-progressive-canary", "without": "jx-progressive"} {
		got := who[label]
		if len(got) != 3 || slices.ContainsFunc(got, func(w string) bool { return w != want }) {
			t.Errorf("requests %s answered by %q; want 3, all by %s", label, got, want)
		}
	}
	after := log[max(strings.Index(log, "→ "), 0):]
	for _, want := range []string{
		"canary iteration 3/3: the matching requests go to the canary",
		"Promotion completed! Scaling down jx-progressive-canary.jx-staging",
		`the loop answers "hello, insiders!" only`,
	} {
		if !strings.Contains(after, want) {
			t.Errorf("after the A/B test's requests, the demo never said %q", want)
		}
	}
}

// checkPromoted checks what the A/B test leaves: the canary Succeeded, the
// primary on its version.
func checkPromoted(t *testing.T, d *demoRun) {
	t.Helper()
	if phase := d.kubectl(t, "get", "canary", "jx-progressive", "-n", "jx-staging", "-o", "jsonpath={.status.phase}"); phase != "Succeeded" {
		t.Errorf("the canary is %s at the end; want Succeeded", phase)
	}
	if msg := d.kubectl(t, "get", "deployment", "jx-progressive", "-n", "jx-staging", "-o",
		`jsonpath={.spec.template.spec.containers[0].env[?(@.name=="MESSAGE")].value}`); msg != "hello, insiders!" {
		t.Errorf("the primary answers %q after the A/B test; want hello, insiders!", msg)
	}
}

// demoRun is a demo that keeps running, as the test started it.
type demoRun struct {
	proc        *cluster.Process
	bin, dir    string
	log         string
	descendants []int
	kubectlBin  string
	kubeconfig  string
}

// startDemo builds the demo and runs it with args, until it keeps running
// at the end of its story; it stops with the test.
func startDemo(t *testing.T, args ...string) *demoRun {
	t.Helper()
	work := t.TempDir()
	bin, err := sluice.Build(work, "test/demo")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(work, "run")
	began := time.Now()
	proc, err := cluster.StartProcess(work, "demo", bin, append(args, "--keep", "--dir="+dir)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = proc.Stop(time.Minute)
		if t.Failed() {
			raw, _ := os.ReadFile(proc.Log())
			t.Logf("the demo's output:\n%s", raw)
		}
	})
	d := &demoRun{proc: proc, bin: bin, dir: dir, log: waitForLine(t, proc, "Everything keeps running"),
		kubectlBin: filepath.Join(cluster.DefaultBinDir(), "kubectl"), kubeconfig: filepath.Join(dir, "cluster", "admin.kubeconfig")}
	t.Logf("the demo (%s) told its story in %s", strings.Join(args, " "), time.Since(began).Round(time.Second))
	d.descendants = cluster.Descendants(proc.Pid())
	if len(d.descendants) < 7 {
		t.Errorf("the demo runs %d processes; want at least etcd, apiserver, controller manager, scheduler, kwok, Prometheus, webhook and shifter", len(d.descendants))
	}
	return d
}

// kubectl runs kubectl on the demo's cluster and returns its output.
func (d *demoRun) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), d.kubectlBin, append([]string{"--kubeconfig", d.kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// down stops the demo with `demo down`, which must leave none of its
// processes behind.
func (d *demoRun) down(t *testing.T) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), d.bin, "down", "--dir="+d.dir).CombinedOutput()
	if err != nil {
		t.Fatalf("demo down: %v\n%s", err, out)
	}
	if err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return d.proc.Exited() != nil, nil
	}); err != nil {
		t.Fatal("the demo still runs after demo down")
	}
	var alive []int
	for _, pid := range d.descendants {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			alive = append(alive, pid)
		}
	}
	if len(alive) > 0 {
		t.Errorf("processes %v of the demo outlived it", alive)
	}
}

// waitForLine waits until the demo's output has a line containing want and
// returns the output so far.
func waitForLine(t *testing.T, proc *cluster.Process, want string) string {
	t.Helper()
	var log string
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 5*time.Minute, true, func(context.Context) (bool, error) {
		raw, err := os.ReadFile(proc.Log())
		if err != nil {
			return false, err
		}
		log = string(raw)
		if err := proc.Exited(); err != nil {
			return false, err
		}
		return strings.Contains(log, want), nil
	})
	if err != nil {
		t.Fatalf("waiting for %q: %v\n%s", want, err, log)
	}
	return log
}

// lookAround lists the commands the demo printed under "Look around".
func lookAround(log string) []string {
	_, rest, _ := strings.Cut(log, "==> Look around")
	var cmds []string
	for line := range strings.Lines(rest) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "==>") {
			break
		}
		if strings.HasPrefix(line, "kubectl ") || strings.HasPrefix(line, "curl ") {
			cmds = append(cmds, line)
		}
	}
	return cmds
}

// runReadme runs every command of the README's sh blocks: kubectl (and
// kubectl sluice) and curl against the running demo, the go run and go
// build commands in a scratch folder, and make as a dry run (make demo is
// this test; make test is what CI runs).
func runReadme(t *testing.T, kubectl, kubeconfig string) {
	t.Helper()
	scratch := t.TempDir()
	t.Cleanup(func() {
		// Stops the README's local cluster also when the test failed early.
		down := exec.Command("go", "run", "./test/localcluster", "down", "--dir", filepath.Join(scratch, "localcluster"))
		down.Dir = sluice.RepoPath(".")
		_ = down.Run()
	})
	// The README builds kubectl-sluice into a folder on the PATH; here the
	// scratch folder's bin, which kubectl finds the plugin in.
	bin := filepath.Join(scratch, "bin")
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, line := range readmeCommands(t) {
		args := strings.Fields(line)
		// make takes the demo's settings from the environment, as in
		// `DEMO_ROUTER=gateway-api make demo`.
		var env []string
		for len(args) > 1 && envAssignment.MatchString(args[0]) {
			env, args = append(env, args[0]), args[1:]
		}
		if len(env) > 0 && args[0] != "make" {
			t.Errorf("no test runs the README's command %q with its environment", line)
			continue
		}
		switch {
		case args[0] == "kubectl" || args[0] == "curl":
			runCommand(t, line, kubectl, kubeconfig)
		case len(args) > 4 && args[0] == "go" && args[1] == "build" && args[2] == "-o":
			args[3] = filepath.Join(bin, filepath.Base(args[3]))
			runInRepo(t, nil, args...)
		case args[0] == "export":
		case args[0] == "make":
			runInRepo(t, env, append([]string{"make", "-n"}, args[1:]...)...)
		case len(args) > 2 && args[0] == "go" && args[1] == "run" && args[2] == "./test/localcluster":
			runInRepo(t, nil, append(args, "--dir", filepath.Join(scratch, "localcluster"))...)
		case len(args) > 2 && args[0] == "go" && args[1] == "run" && args[2] == "./certs/gencert":
			if i := slices.Index(args, "--out"); i >= 0 {
				args[i+1] = filepath.Join(scratch, "certs")
			}
			runInRepo(t, nil, args...)
		default:
			t.Errorf("no test runs the README's command %q", line)
		}
	}
}

// envAssignment is a shell word that sets an environment variable.
var envAssignment = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`)

// runInRepo runs a command from the repository's root, with env added to
// the environment.
func runInRepo(t *testing.T, env []string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), args[0], args[1:]...)
	cmd.Dir = sluice.RepoPath(".")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// readmeCommands lists the commands in the README's sh blocks.
func readmeCommands(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(sluice.RepoPath("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cmds []string
	in := false
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
		case strings.HasPrefix(line, "```"):
			in = false
		case in && strings.TrimSpace(line) != "":
			cmd, _, _ := strings.Cut(line, " #") // a comment
			cmds = append(cmds, strings.TrimSpace(cmd))
		}
	}
	return cmds
}

var curlCommand = regexp.MustCompile(`^curl (?:-H '([^']*)' )?(http://\S+)`)

// runCommand runs a kubectl command with the demo's kubeconfig, or does what
// a curl command does, and fails the test if it fails.
func runCommand(t *testing.T, line, kubectl, kubeconfig string) {
	t.Helper()
	if m := curlCommand.FindStringSubmatch(line); m != nil {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, m[2], nil)
		if err != nil {
			t.Fatal(err)
		}
		if name, value, ok := strings.Cut(m[1], ": "); ok && strings.EqualFold(name, "Host") {
			req.Host = value
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("%s: %v", line, err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %s %s", line, resp.Status, body)
		}
		return
	}
	line, _, _ = strings.Cut(line, " #")
	args := strings.Fields(strings.TrimPrefix(line, "kubectl "))
	if i := slices.Index(args, "--kubeconfig"); i >= 0 {
		args = slices.Delete(args, i, i+2)
	}
	cmd := exec.CommandContext(t.Context(), kubectl, args...)
	cmd.Dir = sluice.RepoPath(".")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: %v\n%s", line, err, out)
	}
}
