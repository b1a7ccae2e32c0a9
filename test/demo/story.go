package main

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/cli"
	"sluice.dev/sluice/pkg/shift"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/meshsim/mesh"
	"sluice.dev/sluice/test/sluice"
)

const (
	namespace = "jx-staging"
	name      = "jx-progressive"
	host      = "staging.jx-progressive.example.com"
	// The messages of the lesson's versions.
	rollingUpdate = "hello, rolling update!"
	progressive   = "hello, progressive!"
	broken        = "hello, broken release!"
	noCheckout    = "hello, broken checkout!"
	steered       = "hello, steered release!"
	insiders      = "hello, insiders!"
	// The share of requests that complete a checkout, in every release but
	// the one with the broken checkout.
	checkoutRate = "0.3"
	// backgroundRPS is the traffic of the shop's other users, besides the
	// loop's: at a 2s interval it still gives the canary's checkout share,
	// which no statistics guard, some 50 requests at its first analysis.
	backgroundRPS = 100
	// The A/B test sends the requests with the header abHeader: abValue to
	// the canary for abIterations analysed intervals. abShare of the shop's
	// other users send it, insiders all along, so that its analysis has
	// requests to judge: some 30 a second, where the canary of the weights
	// gets 20 at its first step.
	abHeader     = "x-canary"
	abValue      = "insider"
	abShare      = 0.3
	abIterations = 3
	// The gateway of the demo's route, as each router names it: Istio by
	// the gateway's host, the Gateway API by the Gateway's namespace/name.
	istioGateway      = "jx-gateway.istio-system.svc.cluster.local"
	gatewayAPIGateway = "istio-system/jx-gateway"
)

//go:embed jx-progressive.yaml
var manifestTemplate string

var manifest = template.Must(template.New("jx-progressive.yaml").Parse(manifestTemplate))

// release is one version of the lesson's application.
type release struct {
	Version, Message, ErrorRate, CheckoutRate string
	Interval, Window                          time.Duration
	// LoadTester and Mesh are the URL of sluice-loadtester and the address
	// of the mesh, for the shop's load-test webhook.
	LoadTester, Mesh string
	// Router is the Deployment's sluice.dev/router, empty for the default;
	// Gateway its sluice.dev/gateways.
	Router, Gateway string
	// MatchHeaders and Iterations make the release an A/B test.
	MatchHeaders string
	Iterations   int
}

// versionOf is a version of the application, as a release.
type versionOf func(version, message, errorRate, checkoutRate string) release

// releases makes the releases of a demo of o, whose load-test webhook
// calls loadTester to send requests through the mesh at meshAddr.
func releases(o options, loadTester, meshAddr string) versionOf {
	// Two intervals: the lesson's 1m window at its 30s pace, and at a
	// faster pace a window that holds mostly the release under analysis.
	window := max(2*o.interval, 10*time.Second)
	return func(version, message, errorRate, checkoutRate string) release {
		r := release{Version: version, Message: message, ErrorRate: errorRate, CheckoutRate: checkoutRate, Interval: o.interval, Window: window,
			LoadTester: loadTester, Mesh: meshAddr, Gateway: istioGateway}
		if o.router == canary.RouterGatewayAPI {
			r.Router, r.Gateway = o.router, gatewayAPIGateway
		}
		return r
	}
}

// abTestOf is r as an A/B test for the insiders.
func abTestOf(r release) release {
	r.MatchHeaders, r.Iterations = abHeader+"="+abValue, abIterations
	return r
}

// signingKey signs the calls of the demo's webhook; the manifest's Secret
// holds it too.
const signingKey = "demo-signing-key"

// demo is the running demo: what it started, and how to reach it.
type demo struct {
	o       options
	screen  *screen
	env     *cluster.Cluster
	mesh    *mesh.Server
	webhook *sluice.Webhook
	shifter *sluice.Shifter
	// loadTester receives the shop's load-test webhook.
	loadTester *sluice.LoadTester
	client     client.Client
	cs         kubernetes.Interface
	loop       *loop
	// events are the Canary's events already shown.
	events cli.EventLog
	// bin is the folder of kubectl-sluice, which kubectl finds there.
	bin string
}

// tell runs the whole story, or with o.short its first release and its
// A/B test; stop stops what it started.
func (d *demo) tell(ctx context.Context) error {
	began := time.Now()
	if err := d.start(ctx); err != nil {
		return err
	}
	v := releases(d.o, d.loadTester.URL, d.mesh.Addr)

	routedBy := ""
	if d.o.router == canary.RouterGatewayAPI {
		routedBy = ", routed by an HTTPRoute (sluice.dev/router: gateway-api) on the Gateway " + gatewayAPIGateway
	}
	d.screen.say("kubectl apply: namespace %s, CanaryPolicy shop (a custom check: the share of requests that complete a checkout) and Deployment %s (3 replicas, MESSAGE=%q), opted in to sluice by that policy%s",
		namespace, name, rollingUpdate, routedBy)
	if err := d.apply(ctx, v("0.0.1", rollingUpdate, "0", checkoutRate)); err != nil {
		return err
	}
	if err := d.follow(ctx, time.Minute, canary.PhaseInitialized, "Initialization done!"); err != nil {
		return err
	}

	d.screen.say("A request loop asks http://%s/ through the mesh, like the lesson's curl loop", host)
	d.loop = startLoop(ctx, d.mesh.Addr, host, 50*time.Millisecond, 3*time.Second)
	if err := d.waitAnswers(ctx, rollingUpdate); err != nil {
		return err
	}

	if !d.o.short {
		if err := d.lesson(ctx, v); err != nil {
			return err
		}
	}
	if err := d.abTest(ctx, abTestOf(v("0.0.6", insiders, "0", checkoutRate))); err != nil {
		return err
	}
	d.screen.say("The story took %s", time.Since(began).Round(time.Second))
	d.lookAround()
	return nil
}

// lesson tells the scenes of the Jenkins X lesson after its first release:
// a promotion, two rollbacks, and a release steered by hand.
func (d *demo) lesson(ctx context.Context, v versionOf) error {
	d.screen.say("kubectl apply: the same manifest with MESSAGE=%q; sluice turns it into a canary", progressive)
	if err := d.apply(ctx, v("0.0.2", progressive, "0", checkoutRate)); err != nil {
		return err
	}
	if err := d.follow(ctx, 20*d.o.interval+2*time.Minute, canary.PhaseSucceeded, "Promotion completed!"); err != nil {
		return err
	}
	if err := d.waitAnswers(ctx, progressive); err != nil {
		return err
	}
	d.showLoadTest(ctx)

	d.screen.say("kubectl apply: a release where half of the requests fail (ERROR_RATE=0.5); sluice rolls it back")
	if err := d.apply(ctx, v("0.0.3", broken, "0.5", checkoutRate)); err != nil {
		return err
	}
	if err := d.follow(ctx, 20*d.o.interval+2*time.Minute, canary.PhaseFailed, "Canary failed!"); err != nil {
		return err
	}
	if err := d.waitAnswers(ctx, progressive); err != nil {
		return err
	}

	d.screen.say("kubectl apply: a release whose every request succeeds but whose checkout is broken (CHECKOUT_RATE=0.02); the shop's custom check rolls it back")
	if err := d.apply(ctx, v("0.0.4", noCheckout, "0", "0.02")); err != nil {
		return err
	}
	if err := d.follow(ctx, 20*d.o.interval+2*time.Minute, canary.PhaseFailed, "Canary failed!"); err != nil {
		return err
	}
	if err := d.waitAnswers(ctx, progressive); err != nil {
		return err
	}

	return d.steer(ctx, v("0.0.5", steered, "0", checkoutRate))
}

// start brings up the control plane, the mesh simulator, and sluice.
func (d *demo) start(ctx context.Context) error {
	d.screen.say("Starting a local Kubernetes control plane (etcd, kube-apiserver, controller manager, scheduler, kwok's simulated nodes) and Prometheus")
	env, err := cluster.Start(ctx, cluster.Options{Dir: filepath.Join(d.o.dir, "cluster"), Progress: progress{d.screen}})
	if err != nil {
		return err
	}
	d.env = env
	d.screen.say("Starting the mesh simulator: a stand-in for Istio's data plane (no Envoy runs here) that routes by the %ss' rules, "+
		"sends the host %d requests per second of the shop's other users (%.0f%% of them insiders, with the header %s: %s), and exports Istio's telemetry",
		d.routeKind(), backgroundRPS, 100*abShare, abHeader, abValue)
	insider := mesh.Client{Share: abShare, Header: http.Header{http.CanonicalHeaderKey(abHeader): {abValue}}}
	if d.mesh, err = mesh.Start(ctx, env.AdminConfig(), mesh.Options{Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", RPS: backgroundRPS,
		Clients: []mesh.Client{insider}}); err != nil {
		return err
	}
	if err := env.SetScrapeTargets("mesh", d.mesh.MetricsAddr); err != nil {
		return err
	}
	d.screen.say("Installing sluice from deploy/ and starting its webhook and shifter as the ServiceAccount and RBAC deploy/ ships")
	if d.webhook, err = sluice.StartWebhook(env, d.o.dir); err != nil {
		return err
	}
	if d.shifter, err = sluice.StartShifter(env, d.o.dir, "shifter"); err != nil {
		return err
	}
	d.screen.say("Starting sluice-loadtester, the receiver of the shop's load-test webhook: at each analysis it sends the canary's host 20 more requests per second for 1s through the mesh")
	keyFile := filepath.Join(d.o.dir, "signing-key")
	if err := os.WriteFile(keyFile, []byte(signingKey), 0o600); err != nil {
		return err
	}
	if d.loadTester, err = sluice.StartLoadTester(d.o.dir, "--signing-key-file="+keyFile); err != nil {
		return err
	}
	d.bin = filepath.Join(d.o.dir, "bin")
	if err := os.MkdirAll(d.bin, 0o755); err != nil {
		return err
	}
	if _, err := sluice.Build(d.bin, "cmd/kubectl-sluice"); err != nil {
		return err
	}
	scheme, err := shift.NewScheme()
	if err != nil {
		return err
	}
	if d.client, err = client.New(env.AdminConfig(), client.Options{Scheme: scheme}); err != nil {
		return err
	}
	d.cs, err = kubernetes.NewForConfig(env.AdminConfig())
	return err
}

// stop stops everything start started, in reverse order.
func (d *demo) stop() error {
	if d.loadTester != nil {
		d.loadTester.Stop()
	}
	if d.shifter != nil {
		d.shifter.Stop()
	}
	if d.webhook != nil {
		d.webhook.Stop()
	}
	if d.mesh != nil {
		d.mesh.Stop()
	}
	if d.env != nil {
		return d.env.Stop()
	}
	return nil
}

// progress indents the control plane's start-up lines into the narration.
type progress struct{ s *screen }

func (p progress) Write(b []byte) (int, error) {
	for line := range strings.Lines(string(b)) {
		p.s.line("%s", strings.TrimRight(line, "\n"))
	}
	return len(b), nil
}

// apply renders a release and applies it with kubectl, as a user would.
func (d *demo) apply(ctx context.Context, r release) error {
	var yaml bytes.Buffer
	if err := manifest.Execute(&yaml, r); err != nil {
		return err
	}
	cmd := d.env.Kubectl(ctx, "apply", "-f", "-")
	cmd.Stdin = &yaml
	out, err := cmd.CombinedOutput()
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		d.screen.line("    %s", strings.TrimRight(line, "\n"))
	}
	if err != nil {
		return fmt.Errorf("kubectl apply: %w", err)
	}
	return nil
}

// follow shows the canary live, with its events, until it reaches phase and
// the event that ends it, which the shifter records after the status, has
// been shown.
func (d *demo) follow(ctx context.Context, timeout time.Duration, phase canary.Phase, final string) error {
	seenFinal := false
	return d.followUntil(ctx, timeout, string(phase), func(cr *canary.Canary, events []string) bool {
		for _, e := range events {
			seenFinal = seenFinal || strings.HasPrefix(e, final)
		}
		return cr.Status.Phase == phase && seenFinal
	})
}

// followUntil shows the canary live, with its events, until done says so
// of the canary and the events new since the last look.
func (d *demo) followUntil(ctx context.Context, timeout time.Duration, what string, done func(*canary.Canary, []string) bool) error {
	defer d.screen.Settle()
	var last canary.Phase
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		cr := &canary.Canary{}
		if err := d.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, cr); err != nil {
			// Not there yet, or the API server is busy: look again.
			return false, nil
		}
		events := d.showEvents(ctx)
		var shares []share
		if d.loop != nil {
			shares = d.loop.shares()
		}
		d.screen.Show(render(cr, shares, time.Now()))
		last = cr.Status.Phase
		return done(cr, events), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the canary to be %s (it is %s): %w", what, last, err)
	}
	return nil
}

// steer tells the scene of a person steering a release with kubectl
// sluice: a pause holds it, resume goes on, abort rolls it back.
func (d *demo) steer(ctx context.Context, r release) error {
	d.screen.say("kubectl apply: a healthy release (MESSAGE=%q), steered by hand with kubectl sluice", r.Message)
	if err := d.apply(ctx, r); err != nil {
		return err
	}
	var held int32
	if err := d.followUntil(ctx, 20*d.o.interval+2*time.Minute, "at weight 20", func(cr *canary.Canary, _ []string) bool {
		held = cr.Status.CanaryWeight
		return cr.Status.Phase == canary.PhaseProgressing && held >= 20
	}); err != nil {
		return err
	}
	d.screen.say("kubectl sluice pause: the canary holds at its weight, its interval clock stopped")
	if err := d.kubectlSluice(ctx, "pause", name, "-n", namespace); err != nil {
		return err
	}
	var pausedAt time.Time
	if err := d.followUntil(ctx, time.Minute, "paused for two intervals", func(cr *canary.Canary, _ []string) bool {
		if cr.Status.PausedAt == nil {
			return false
		}
		held, pausedAt = cr.Status.CanaryWeight, cr.Status.PausedAt.Time
		// Two intervals of holding, for the eye.
		return time.Since(pausedAt) >= 2*d.o.interval
	}); err != nil {
		return err
	}
	d.screen.say("kubectl sluice resume: the canary goes on from where it stopped")
	if err := d.kubectlSluice(ctx, "resume", name, "-n", namespace); err != nil {
		return err
	}
	if err := d.followUntil(ctx, 2*d.o.interval+time.Minute, "past weight "+fmt.Sprint(held), func(cr *canary.Canary, _ []string) bool {
		return cr.Status.CanaryWeight > held
	}); err != nil {
		return err
	}
	d.screen.say("kubectl sluice abort: rolled back now, the primary unchanged, the template kept for kubectl sluice retry")
	if err := d.kubectlSluice(ctx, "abort", name, "-n", namespace); err != nil {
		return err
	}
	if err := d.follow(ctx, time.Minute, canary.PhaseFailed, "Canary failed!"); err != nil {
		return err
	}
	return d.waitAnswers(ctx, progressive)
}

// abAsks is how many requests with the A/B test's header, and how many
// without, the demo sends while the test runs: a handful of each, to see.
const abAsks = 3

// abTest tells the scene of an A/B test: while it runs, the mesh answers
// every request with the header from the canary and every other from the
// primary, which a handful of requests of each show; then it is promoted.
func (d *demo) abTest(ctx context.Context, r release) error {
	d.screen.say("kubectl apply: a release for insiders first (MESSAGE=%q), an A/B test (sluice.dev/match-headers: %q, sluice.dev/iterations: \"%d\"): "+
		"the requests with the header %s: %s go to the canary, all others to the primary, for %d analysed intervals; then the canary is promoted",
		r.Message, r.MatchHeaders, r.Iterations, abHeader, abValue, r.Iterations)
	if err := d.apply(ctx, r); err != nil {
		return err
	}
	insider := http.Header{http.CanonicalHeaderKey(abHeader): {abValue}}
	// Progressing comes before the mesh routes by the new rule: the
	// shifter writes the route, and the mesh's cache catches up.
	if err := d.followUntil(ctx, 20*d.o.interval+2*time.Minute, "in its A/B test", func(cr *canary.Canary, _ []string) bool {
		if cr.Status.Phase != canary.PhaseProgressing {
			return false
		}
		a, err := ask(ctx, d.mesh.Addr, host, insider)
		return err == nil && a.workload == name+"-canary"
	}); err != nil {
		return err
	}
	d.screen.say("While the A/B test runs, %d requests with the header %s: %s and %d without, through the mesh; who answered each, by the mesh's %s:",
		abAsks, abHeader, abValue, abAsks, mesh.HeaderWorkload)
	for _, c := range []struct {
		label  string
		header http.Header
	}{{"with " + abHeader + ": " + abValue, insider}, {"without", nil}} {
		for range abAsks {
			a, err := ask(ctx, d.mesh.Addr, host, c.header)
			if err != nil {
				return fmt.Errorf("ask the mesh %s: %w", c.label, err)
			}
			d.screen.line("    %-22s → %-21s %q", c.label, a.workload, a.text)
		}
	}
	if err := d.follow(ctx, 20*d.o.interval+2*time.Minute, canary.PhaseSucceeded, "Promotion completed!"); err != nil {
		return err
	}
	return d.waitAnswers(ctx, r.Message)
}

// kubectlSluice runs kubectl sluice as a user would, kubectl finding the
// plugin on the PATH, and shows the command and what it said.
func (d *demo) kubectlSluice(ctx context.Context, args ...string) error {
	// kubectl takes no flags before a plugin's name: the kubeconfig comes
	// from the environment.
	cmd := exec.CommandContext(ctx, d.env.Bin("kubectl"), append([]string{"sluice"}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+d.env.Kubeconfig, "PATH="+d.bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	d.screen.line("    $ kubectl sluice %s", strings.Join(args, " "))
	out, err := cmd.CombinedOutput()
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		d.screen.line("    %s", strings.TrimRight(line, "\n"))
	}
	if err != nil {
		return fmt.Errorf("kubectl sluice %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// showEvents prints the Canary's events that are new since the last call,
// as kubectl sluice status --watch does: an event that Kubernetes folded
// into an earlier one of the same message (one of an earlier scene) shows
// again each time it happens. It returns their messages.
func (d *demo) showEvents(ctx context.Context) []string {
	list, err := d.cs.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: cli.EventSelector(name).String()})
	if err != nil {
		return nil
	}
	var shown []string
	for _, o := range d.events.Unseen(cli.Occurrences(list.Items)) {
		d.screen.line("  event   %s", cli.FormatOccurrence(o, time.Now(), nil))
		shown = append(shown, o.Message)
	}
	return shown
}

// waitAnswers waits until every answer of the loop's window says text.
func (d *demo) waitAnswers(ctx context.Context, text string) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		d.screen.Show([]string{answersLine(d.loop.shares())}, "")
		return d.loop.only(text), nil
	})
	d.screen.Clear()
	if err != nil {
		return fmt.Errorf("waiting for the loop to answer only %q: %w", text, err)
	}
	d.screen.line("  the loop answers %q only", text)
	return nil
}

// showLoadTest shows the last answer of the load-test webhook, from the
// Canary's status.
func (d *demo) showLoadTest(ctx context.Context) {
	cr := &canary.Canary{}
	if err := d.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, cr); err != nil {
		d.screen.say("The Canary could not be read: %v", err)
		return
	}
	for _, h := range cr.Status.Webhooks {
		if h.Name == "load-test" {
			d.screen.say("The load-test webhook's last answer, from sluice-loadtester: %s %s", h.Result, h.Message)
		}
	}
}

// routeKind is the kind of the route that sluice makes on the demo's router.
func (d *demo) routeKind() string {
	if d.o.router == canary.RouterGatewayAPI {
		return "HTTPRoute"
	}
	return "VirtualService"
}

// lookAround prints how to look at the running demo.
func (d *demo) lookAround() {
	kubeconfig := d.env.Kubeconfig
	k := "kubectl --kubeconfig " + kubeconfig
	d.screen.say("Look around")
	for _, l := range []string{
		k + " get canary -n " + namespace,
		k + " describe canary " + name + " -n " + namespace,
		"kubectl sluice get -n " + namespace + " --kubeconfig " + kubeconfig + "   # with " + d.bin + " on your PATH",
		"kubectl sluice status " + name + " -n " + namespace + " --kubeconfig " + kubeconfig,
		k + " get " + strings.ToLower(d.routeKind()) + " " + name + " -n " + namespace + " -o yaml",
		fmt.Sprintf("curl -H 'Host: %s' http://%s/", host, d.mesh.Addr),
		fmt.Sprintf("curl http://127.0.0.1:%d/metrics   # the shifter's metrics", d.shifter.MetricsPort),
		fmt.Sprintf("curl http://127.0.0.1:%d/metrics   # the webhook's metrics", d.webhook.MetricsPort),
		"Prometheus: " + d.env.PrometheusURL,
	} {
		d.screen.line("    %s", l)
	}
}
